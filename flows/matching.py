"""Understanding a resident's reply to a question: numbers, letters, option text, words and typos."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Sequence

from flows.definition import Question

_EDGE_PUNCTUATION = re.compile(r"^[\W_]+|[\W_]+$", re.UNICODE)
_SPACES = re.compile(r"\s+")
_SIGNED_NUMBER = re.compile(r"[-+]?\d+")

NUMBER_WORDS = {
    # English
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10,
    # Welsh
    "dim": 0, "un": 1, "dau": 2, "dwy": 2, "tri": 3, "tair": 3, "pedwar": 4, "pedair": 4, "pump": 5,
    "chwech": 6, "saith": 7, "wyth": 8, "naw": 9, "deg": 10,
}  # fmt: skip

YES_WORDS = {"y", "yes", "yeah", "yea", "yep", "yup", "ya", "aye", "sure", "ok", "okay"}
NO_WORDS = {"n", "no", "nope", "nah"}
WELSH_YES = {"ie", "do", "oes", "ydw", "ydy", "ydi"}
WELSH_NO = {"na", "naddo", "nac oes", "nage", "nac ydw", "dim"}


def normalise(text: str) -> str:
    """Case-fold, drop accents' differences in width, trim punctuation at the ends, collapse spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _EDGE_PUNCTUATION.sub("", text.strip())
    return _SPACES.sub(" ", text)


def match_choice(reply: str, question: Question, languages: Sequence[str]) -> str | None:
    """The option id a reply means: its number, its letter, its id or text (any language), or a near miss."""
    answer = normalise(reply)
    signed = reply.strip().rstrip(".!")
    if not answer or (signed[:1] in "+-" and _SIGNED_NUMBER.fullmatch(signed)):
        return None
    options = question.options
    if answer.isdigit():
        index = int(answer) - 1
        return options[index].id if 0 <= index < len(options) else None
    if len(answer) == 1 and "a" <= answer <= "z":
        index = ord(answer) - ord("a")
        return options[index].id if index < len(options) else None
    labels: dict[str, str] = {}
    for option in options:
        labels.setdefault(normalise(option.id), option.id)
        for language in languages:
            if language in option.text:
                labels.setdefault(normalise(option.text[language]), option.id)
    if answer in labels:
        return labels[answer]
    close = difflib.get_close_matches(answer, list(labels), n=2, cutoff=0.75)
    if len(close) == 1 or (close and labels[close[0]] == labels[close[-1]]):
        return labels[close[0]]
    return None


def match_scale(reply: str, low: int, high: int) -> int | None:
    """A whole number in [low, high], given as digits or a number word (with a small typo allowed)."""
    answer = normalise(reply)
    signed = reply.strip().rstrip(".!")
    if _SIGNED_NUMBER.fullmatch(signed):
        value = int(signed)
    elif answer in NUMBER_WORDS:
        value = NUMBER_WORDS[answer]
    else:
        close = difflib.get_close_matches(answer, list(NUMBER_WORDS), n=1, cutoff=0.75)
        if not close or len(answer) < 3:
            return None
        value = NUMBER_WORDS[close[0]]
    return value if low <= value <= high else None


def match_yes_no(reply: str, *, welsh: bool) -> bool | None:
    """True for yes, False for no, None when it is neither. Welsh words count when the survey has Welsh."""
    answer = normalise(reply)
    yes = YES_WORDS | (WELSH_YES if welsh else set())
    no = (NO_WORDS | WELSH_NO) if welsh else NO_WORDS
    if answer in yes or answer == "1":
        return True
    if answer in no or answer == "2":
        return False
    return None
