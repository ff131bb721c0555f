"""Reading a survey definition from YAML text, with errors that name the file, the field and the line."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from flows.commands import HELP_WORDS, LANGUAGE_MENU_WORDS, LANGUAGE_WORDS, START_WORDS, STOP_WORDS
from flows.definition import FieldProblem, Survey


@dataclass(frozen=True, slots=True)
class Problem:
    field: str  # dotted path, e.g. "questions[2].when.rating"
    line: int  # 1-based; the nearest line when the field itself is missing
    message: str

    def describe(self, source: str) -> str:
        return f"{source}:{self.line}: {self.field}: {self.message}"


class SurveyFileError(ValueError):
    """A survey file that cannot be loaded; nothing from it has been stored."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__("\n".join(problem.describe(source) for problem in self.problems))


def parse_survey(text: str, source: str, *, others: Iterable[Survey] = ()) -> Survey:
    """Validate one survey file's text. ``others`` are the stored surveys, for the keyword rule."""
    reader = YAML(typ="safe", pure=True)  # YAML 1.2: "park?" in a flow mapping, and "no" stays a string
    try:
        root = reader.compose(text)
        data = reader.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise SurveyFileError(source, [Problem("(file)", line, f"not valid YAML: {exc.problem}")]) from None
    if not isinstance(data, dict) or root is None:
        raise SurveyFileError(source, [Problem("(file)", 1, "expected a mapping of survey fields")])
    try:
        survey = Survey.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc: tuple[Any, ...] = tuple(error["loc"])
            cause = (error.get("ctx") or {}).get("error")
            message = str(cause) if cause is not None else error["msg"]
            if isinstance(cause, FieldProblem):
                loc = loc + cause.loc
            problems.append(Problem(_dotted(loc), _line_of(root, loc), message))
        raise SurveyFileError(source, problems) from None
    _check_keyword_is_free(survey, others, root, source)
    return survey


def _check_keyword_is_free(survey: Survey, others: Iterable[Survey], root: Node, source: str) -> None:
    word = survey.keyword.lower()
    if word in STOP_WORDS | START_WORDS | HELP_WORDS | LANGUAGE_MENU_WORDS | set(LANGUAGE_WORDS) | {
        "skip",
        "hepgor",
    }:
        message = (
            f"keyword {survey.keyword} is a command word residents use (STOP, START, HELP...): choose another"
        )
        raise SurveyFileError(source, [Problem("keyword", _line_of(root, ("keyword",)), message)])
    for other in others:
        overlapping = other.opens <= survey.closes and survey.opens <= other.closes
        if other.slug != survey.slug and other.keyword == survey.keyword and overlapping:
            message = f"keyword {survey.keyword} is already used by the open survey {other.slug!r}"
            raise SurveyFileError(source, [Problem("keyword", _line_of(root, ("keyword",)), message)])


def _dotted(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(survey)"


def _line_of(node: Node, loc: tuple[Any, ...]) -> int:
    """The line of the deepest YAML node that ``loc`` reaches."""
    for part in loc:
        child: Node | None = None
        if isinstance(node, MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    child = value if not isinstance(value, ScalarNode) else key
                    break
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
    return int(node.start_mark.line) + 1
