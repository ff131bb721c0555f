"""Understanding replies on their own: normalising, choices, scales, yes/no, commands and languages."""

from __future__ import annotations

import pytest

from flows.commands import Command, command_in, language_in
from flows.definition import Question
from flows.matching import match_choice, match_scale, match_yes_no, normalise
from tests.flows.transcript import PARKS

VISITS = PARKS.question("visits")
CAR_PARKS = Question.model_validate(
    {
        "id": "car_park",
        "type": "choice",
        "text": {"en": "Which car park?"},
        "options": [{"id": "a", "text": {"en": "Car park A"}}, {"id": "b", "text": {"en": "Car park B"}}],
    }
)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (" Parks! ", "parks"),
        ("EVERY   Week.", "every week"),
        ("\t4\n", "4"),
        ("...", ""),
        ("", ""),
        ("Ｐａｒｋｓ", "parks"),
    ],
)
def test_normalise(raw: str, clean: str) -> None:
    assert normalise(raw) == clean


@pytest.mark.parametrize(
    ("reply", "option"),
    [("1", "weekly"), ("3", "rarely"), ("c", "rarely"), ("Every Month", "monthly"), ("monthly", "monthly"),
     ("evry week", "weekly"), ("Rarely or nevr", "rarely"), ("anaml neu byth", "rarely")],
)  # fmt: skip
def test_match_choice(reply: str, option: str) -> None:
    assert match_choice(reply, VISITS, PARKS.languages) == option


@pytest.mark.parametrize("reply", ["", "0", "4", "99", "d", "z", "often", "every"])
def test_match_choice_refuses(reply: str) -> None:
    assert match_choice(reply, VISITS, PARKS.languages) is None


def test_a_near_miss_between_two_options_is_not_guessed() -> None:
    assert match_choice("car park b", CAR_PARKS, ["en"]) == "b"
    assert match_choice("car park c", CAR_PARKS, ["en"]) is None


def test_welsh_option_text_only_counts_in_the_surveys_languages() -> None:
    assert match_choice("bob mis", VISITS, ["en", "cy"]) == "monthly"
    assert match_choice("bob mis", VISITS, ["en"]) is None


@pytest.mark.parametrize(
    ("reply", "value"),
    [("1", 1), ("5", 5), ("four", 4), ("FIVE", 5), ("fuor", 4), ("pedwar", 4), ("pedair", 4), ("tri", 3),
     ("dau", 2), ("pump", 5)],
)  # fmt: skip
def test_match_scale(reply: str, value: int) -> None:
    assert match_scale(reply, 1, 5) == value


@pytest.mark.parametrize("reply", ["0", "6", "six", "chwech", "", "x", "lots", "3.5", "one or two"])
def test_match_scale_refuses(reply: str) -> None:
    assert match_scale(reply, 1, 5) is None


def test_match_scale_with_zero() -> None:
    assert match_scale("zero", 0, 10) == 0
    assert match_scale("ten", 0, 10) == 10
    assert match_scale("11", 0, 10) is None


@pytest.mark.parametrize("reply", ["y", "Y", "yes", "YES!", "yeah", "yep", "ok"])
def test_yes(reply: str) -> None:
    assert match_yes_no(reply, welsh=False) is True


@pytest.mark.parametrize("reply", ["n", "no", "No.", "nope", "nah"])
def test_no(reply: str) -> None:
    assert match_yes_no(reply, welsh=False) is False


@pytest.mark.parametrize(
    ("reply", "value"), [("ie", True), ("IE", True), ("ydw", True), ("na", False), ("naddo", False)]
)
def test_welsh_yes_no_when_the_survey_has_welsh(reply: str, value: bool) -> None:
    assert match_yes_no(reply, welsh=True) is value


@pytest.mark.parametrize("reply", ["ie", "ydw", "naddo"])
def test_welsh_yes_no_ignored_without_welsh(reply: str) -> None:
    assert match_yes_no(reply, welsh=False) is None


@pytest.mark.parametrize("reply", ["", "maybe", "yes and no", "perhaps"])
def test_neither_yes_nor_no(reply: str) -> None:
    assert match_yes_no(reply, welsh=True) is None


@pytest.mark.parametrize(
    "text",
    ["STOP", "stop", " Stop! ", "STOPALL", "Unsubscribe", "CANCEL", "end", "QUIT", "revoke", "OPTOUT",
     "opt out", "Stop please", "please stop"],
)  # fmt: skip
def test_stop_words(text: str) -> None:
    assert command_in(text) is Command.STOP


@pytest.mark.parametrize("text", ["START", "yes", "Unstop"])
def test_start_words(text: str) -> None:
    assert command_in(text) is Command.START


@pytest.mark.parametrize("text", ["HELP", "info", "Help?"])
def test_help_words(text: str) -> None:
    assert command_in(text) is Command.HELP


@pytest.mark.parametrize(
    "text",
    ["STOP the fly-tipping", "don't stop", "stopping", "stop stop", "", "PARKS", "4", "help me", "please"],
)
def test_not_commands(text: str) -> None:
    assert command_in(text) is None


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("CYMRAEG", "cy"),
        ("cymraeg", "cy"),
        ("Welsh", "cy"),
        ("ENGLISH", "en"),
        ("Saesneg!", "en"),
        ("French", None),
    ],
)
def test_language_words(text: str, language: str | None) -> None:
    assert language_in(text) == language


@pytest.mark.parametrize("text", ["opt-out", "Opt out", "OPTOUT!"])
def test_opting_out_is_a_stop_however_it_is_spelt(text: str) -> None:
    assert command_in(text) is Command.STOP
