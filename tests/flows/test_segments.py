"""SMS segment counting (what Twilio bills) and quiet hours."""

from __future__ import annotations

from datetime import time

import pytest

from flows.quiet_hours import QuietHours
from flows.segments import is_gsm, segments
from tests.flows.transcript import PARKS

EMOJI = "\N{GRINNING FACE}"  # outside the BMP: two UTF-16 code units


@pytest.mark.parametrize(
    ("length", "count"), [(0, 1), (1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)]
)
def test_gsm_text_is_160_then_153_a_segment(length: int, count: int) -> None:
    assert segments("a" * length) == count


def test_gsm_basic_characters_count_once() -> None:
    assert is_gsm("Café £5 @ Ñandù? ¡Hola! §¿ Øre")
    assert not is_gsm("Sí")  # í is not in the GSM alphabet
    assert segments("£" * 160) == 1
    assert segments("é" * 161) == 2


@pytest.mark.parametrize("char", ["€", "^", "{", "}", "[", "]", "~", "|", "\\"])
def test_gsm_extension_characters_count_double(char: str) -> None:
    assert is_gsm(char)
    assert segments(char * 80) == 1
    assert segments(char * 80 + "a") == 2
    assert segments("a" * 159 + char) == 2


def test_one_emoji_makes_the_whole_text_ucs2() -> None:
    assert not is_gsm("Thanks " + EMOJI)
    assert segments(EMOJI + "a" * 68) == 1  # 70 code units
    assert segments(EMOJI + "a" * 69) == 2
    assert segments("a" * 159 + EMOJI) == 3  # 161 code units at 67 a part


@pytest.mark.parametrize("char", ["ŵ", "ŷ", "â"])
def test_welsh_circumflexes_are_not_gsm(char: str) -> None:
    assert not is_gsm(f"D{char}r")
    assert segments(char * 70) == 1
    assert segments(char * 71) == 2
    assert segments(char * 134) == 2
    assert segments(char * 135) == 3


def test_a_welsh_question_costs_ucs2() -> None:
    welsh = PARKS.question("visits").text["cy"]

    assert not is_gsm(welsh)
    assert is_gsm(PARKS.question("visits").text["en"])


@pytest.mark.parametrize(
    "text", ["a" * 152 + "€" + "a" * 152, "a" * 66 + EMOJI + "a" * 66], ids=["gsm-escape", "surrogate-pair"]
)
def test_a_double_width_character_is_not_split_between_parts(text: str) -> None:
    assert segments(text) == 3


# Quiet hours

OVERNIGHT = QuietHours.parse("21:00-08:00")


@pytest.mark.parametrize("local", [time(21, 0), time(23, 30), time(0, 0), time(3, 0), time(7, 59)])
def test_overnight_quiet_hours_contain(local: time) -> None:
    assert OVERNIGHT.contains(local)


@pytest.mark.parametrize("local", [time(8, 0), time(12, 0), time(20, 59), time(20, 59, 59)])
def test_overnight_quiet_hours_do_not_contain(local: time) -> None:
    assert not OVERNIGHT.contains(local)


def test_same_day_quiet_hours() -> None:
    lunch = QuietHours.parse(" 12:00 - 14:00 ")

    assert lunch == QuietHours(time(12, 0), time(14, 0))
    assert lunch.contains(time(12, 0))
    assert lunch.contains(time(13, 59))
    assert not lunch.contains(time(14, 0))
    assert not lunch.contains(time(11, 59))


@pytest.mark.parametrize("text", ["", "21:00", "9pm-8am", "21:00-08:00-09:00", "25:00-08:00"])
def test_bad_quiet_hours_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="quiet hours must look like 21:00-08:00"):
        QuietHours.parse(text)
