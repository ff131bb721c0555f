"""Reading a survey definition from YAML text, with errors that name the file, the field and the line."""

from __future__ import annotations

from collections.abc import Iterable

from flows.commands import (
    HELP_WORDS,
    LANGUAGE_MENU_WORDS,
    LANGUAGE_WORDS,
    START_WORDS,
    STOP_WORDS,
)
from flows.definition import Survey
from flows.yaml_file import Problem, YamlDocument, YamlFileError, read_yaml, validate

__all__ = ["Problem", "SurveyFileError", "parse_survey"]


class SurveyFileError(YamlFileError):
    """A survey file that cannot be loaded; nothing from it has been stored."""


def parse_survey(text: str, source: str, *, others: Iterable[Survey] = ()) -> Survey:
    """Validate one survey file's text. ``others`` are the stored surveys, for the keyword rule."""
    document = read_yaml(text, source, error=SurveyFileError, expected="a mapping of survey fields")
    survey = validate(Survey, document, source, error=SurveyFileError)
    _check_keyword_is_free(survey, others, document, source)
    return survey


COMMAND_WORDS = (
    STOP_WORDS | START_WORDS | HELP_WORDS | LANGUAGE_MENU_WORDS | set(LANGUAGE_WORDS) | {"skip", "hepgor"}
)


def _check_keyword_is_free(
    survey: Survey, others: Iterable[Survey], document: YamlDocument, source: str
) -> None:
    if survey.keyword.lower() in COMMAND_WORDS:
        message = (
            f"keyword {survey.keyword} is a word residents use as a command (STOP, HELP...): choose another"
        )
        raise SurveyFileError(source, [document.problem(message, "keyword")])
    for other in others:
        overlapping = other.opens <= survey.closes and survey.opens <= other.closes
        if other.slug != survey.slug and other.keyword == survey.keyword and overlapping:
            message = f"keyword {survey.keyword} is already used by the open survey {other.slug!r}"
            raise SurveyFileError(source, [document.problem(message, "keyword")])
