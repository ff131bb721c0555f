"""Survey definitions: the YAML format councils write, validated with pydantic."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}$")]
LocalText = dict[str, Annotated[str, StringConstraints(min_length=1, max_length=1000)]]
"""Text per language code; the YAML may give a plain string, which means the default language."""

AnswerValue = str
"""Stored answer: option id, a whole number, "yes"/"no", or free text."""

KEYWORD_PATTERN = re.compile(r"^[A-Za-z0-9]{2,20}$")


class FieldProblem(ValueError):
    """A validation problem that knows which field (relative to the model) it is about."""

    def __init__(self, message: str, *loc: str | int) -> None:
        super().__init__(message)
        self.loc = loc


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Lead(_Frozen):
    name: Annotated[str, StringConstraints(min_length=1)]
    contact: Annotated[str, StringConstraints(min_length=1)]


class Option(_Frozen):
    id: Ident
    text: LocalText


class Question(_Frozen):
    id: Ident
    type: Literal["choice", "scale", "yesno", "text"]
    text: LocalText
    options: tuple[Option, ...] = ()
    min: int = 1
    max: int = 5
    optional: bool = False
    max_length: int = Field(default=500, ge=1, le=1600)
    when: dict[str, tuple[str, ...]] | None = None

    @field_validator("when", mode="before")
    @classmethod
    def _when_values_as_text(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        normalised: dict[Any, Any] = {}
        for key, allowed in value.items():
            items = allowed if isinstance(allowed, list | tuple) else [allowed]
            normalised[key] = tuple(_as_answer_text(item) for item in items)
        return normalised

    @model_validator(mode="after")
    def _check_shape(self) -> Question:
        if self.type == "choice":
            if len(self.options) < 2:
                raise FieldProblem("a choice question needs at least 2 options", "options")
            ids = [option.id for option in self.options]
            if len(set(ids)) != len(ids):
                raise FieldProblem("option ids must be unique within a question", "options")
        elif self.options:
            raise FieldProblem(f"options are only allowed on choice questions, not {self.type}", "options")
        if self.type == "scale" and not (self.min < self.max and self.max - self.min <= 10):
            raise FieldProblem("a scale needs min < max and at most 11 points", "max")
        return self


class Survey(_Frozen):
    slug: Slug
    title: LocalText
    keyword: str
    lead: Lead
    purpose: LocalText
    can_influence: LocalText
    cannot_influence: LocalText
    opens: date
    closes: date
    languages: tuple[Language, ...] = ("en",)
    questions: tuple[Question, ...] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _plain_strings_mean_default_language(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        languages = data.get("languages") or ["en"]
        default = languages[0] if isinstance(languages, list) and languages else "en"
        data = dict(data)
        for key in ("title", "purpose", "can_influence", "cannot_influence"):
            if isinstance(data.get(key), str):
                data[key] = {default: data[key]}
        questions = data.get("questions")
        if isinstance(questions, list):
            data["questions"] = [_localise_question(q, default) for q in questions]
        return data

    @field_validator("keyword")
    @classmethod
    def _keyword_is_one_word(cls, value: str) -> str:
        if not KEYWORD_PATTERN.match(value):
            raise ValueError("keyword must be one word of 2-20 letters or digits")
        return value.upper()

    @model_validator(mode="after")
    def _check_consistency(self) -> Survey:
        if self.closes < self.opens:
            raise FieldProblem("closes must not be before opens", "closes")
        if len(set(self.languages)) != len(self.languages):
            raise FieldProblem("languages must not repeat", "languages")
        seen: dict[str, Question] = {}
        for index, question in enumerate(self.questions):
            if question.id in seen:
                raise FieldProblem(f"question id {question.id!r} is used twice", "questions", index, "id")
            for condition, allowed in (question.when or {}).items():
                earlier = seen.get(condition)
                where = ("questions", index, "when", condition)
                if earlier is None:
                    raise FieldProblem(
                        f"'when' names {condition!r}, which is not an earlier question", *where
                    )
                _check_when_values(earlier, allowed, where)
            seen[question.id] = question
        default = self.languages[0]
        for loc, text in self._texts():
            if default not in text:
                raise FieldProblem(f"no text in the default language {default!r}", *loc)
        return self

    def _texts(self) -> list[tuple[tuple[str | int, ...], LocalText]]:
        texts: list[tuple[tuple[str | int, ...], LocalText]] = [
            (("title",), self.title),
            (("purpose",), self.purpose),
            (("can_influence",), self.can_influence),
            (("cannot_influence",), self.cannot_influence),
        ]
        for q, question in enumerate(self.questions):
            texts.append((("questions", q, "text"), question.text))
            texts.extend(
                (("questions", q, "options", o, "text"), option.text)
                for o, option in enumerate(question.options)
            )
        return texts

    @property
    def default_language(self) -> str:
        return self.languages[0]

    def question(self, question_id: str) -> Question:
        for question in self.questions:
            if question.id == question_id:
                return question
        raise KeyError(question_id)

    def is_open_on(self, day: date) -> bool:
        return self.opens <= day <= self.closes


def _localise_question(question: Any, default: str) -> Any:
    if not isinstance(question, dict):
        return question
    question = dict(question)
    if isinstance(question.get("text"), str):
        question["text"] = {default: question["text"]}
    options = question.get("options")
    if isinstance(options, list):
        question["options"] = [
            {**option, "text": {default: option["text"]}}
            if isinstance(option, dict) and isinstance(option.get("text"), str)
            else option
            for option in options
        ]
    return question


def _as_answer_text(value: Any) -> Any:
    if isinstance(value, bool):  # YAML reads yes/no as booleans
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return value


def _check_when_values(earlier: Question, allowed: tuple[str, ...], where: tuple[str | int, ...]) -> None:
    if earlier.type == "choice":
        valid = {option.id for option in earlier.options}
    elif earlier.type == "scale":
        valid = {str(n) for n in range(earlier.min, earlier.max + 1)}
    elif earlier.type == "yesno":
        valid = {"yes", "no"}
    else:
        raise FieldProblem(f"'when' cannot depend on the free-text question {earlier.id!r}", *where)
    unknown = [value for value in allowed if value not in valid]
    if unknown:
        raise FieldProblem(f"{unknown} are not possible answers to {earlier.id!r}", *where)


def text_in(text: LocalText, language: str, default: str) -> str:
    """The text in ``language``, falling back to the survey's default language."""
    return text.get(language) or text[default]
