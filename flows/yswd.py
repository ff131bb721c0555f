"""You Said, We Did: the card the comms team writes, the message it becomes, and what that message costs.

A card tells the people who took part in a survey what changed because of it, and what could not change
and why. It is written in YAML (``parse_card``), aimed at some or all of the survey's participants
(``Audience``, ``matches``), rendered as a short plain message (``render_message``) or from an edited
template with GOV.UK Notify-style ``((placeholders))`` (``render_template``), and previewed for cost before
anyone presses send (``sms_preview``, ``telegram_preview``). Replies to the question at its end ("Did this
answer your concern?") are read by ``read_pulse``.

Everything here is pure: no clock, no I/O.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from flows.definition import FieldProblem, Ident, Language, Question, Slug, Survey, text_in
from flows.effects import Choice
from flows.matching import NO_WORDS, WELSH_NO, WELSH_YES, YES_WORDS, normalise
from flows.segments import GSM_BASIC, GSM_EXTENSION, is_gsm, segments
from flows.yaml_file import Problem, YamlDocument, YamlFileError, read_yaml, validate

__all__ = [
    "PULSE_CHOICES",
    "TELEGRAM_LIMIT",
    "Audience",
    "Card",
    "CardFileError",
    "CardStatus",
    "Channel",
    "MissingPlaceholder",
    "Problem",
    "PulseAnswer",
    "Rendered",
    "Replacement",
    "SmsPreview",
    "TelegramPreview",
    "card_advice",
    "default_template",
    "gsm_safe",
    "matches",
    "parse_card",
    "placeholders",
    "pulse_buttons",
    "read_pulse",
    "render_message",
    "render_template",
    "sms_preview",
    "telegram_preview",
]

CardStatus = Literal["planned", "in_progress", "done", "not_possible"]
Channel = Literal["sms", "telegram"]
PulseAnswer = Literal["yes", "partly", "no"]

CardText = dict[
    Language, Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
]
"""Text per language code; the YAML may give a plain string, which means the card's default language."""

_THEME_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
_TEXT_FIELDS = ("title", "you_said", "we_did", "cannot_change")


# The card


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Audience(_Frozen):
    """Which participants a card is for; every condition given must hold, and no conditions means all.

    ``questions``: the answer to each named question is one of the listed values (option ids, numbers,
    "yes"/"no"). ``max_rating``: the answer to each named scale question is at most N. ``wards``: the
    resident's ward is one of these. ``themes``: the resident's answers were tagged with one of these.
    """

    questions: dict[Ident, tuple[str, ...]] = Field(default_factory=dict)
    max_rating: dict[Ident, int] = Field(default_factory=dict)
    wards: tuple[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)], ...] = ()
    themes: tuple[str, ...] = ()

    @field_validator("questions", mode="before")
    @classmethod
    def _answers_as_text(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        listed = {key: items if isinstance(items, list | tuple) else [items] for key, items in value.items()}
        return {key: tuple(_as_answer_text(item) for item in items) for key, items in listed.items()}

    @field_validator("questions")
    @classmethod
    def _each_question_lists_answers(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for key, items in value.items():
            if not items:
                raise FieldProblem("list at least one answer", key)
        return value

    @field_validator("themes")
    @classmethod
    def _themes_are_theme_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for index, name in enumerate(value):
            if not _THEME_NAME.fullmatch(name):
                raise FieldProblem(
                    f"{name!r} is not a theme name (lower case letters, digits and hyphens)",
                    index,
                )
        return value

    @property
    def everyone(self) -> bool:
        """True when the card goes to everyone who took part."""
        return not (self.questions or self.max_rating or self.wards or self.themes)


class Card(_Frozen):
    """A You Said, We Did card: what residents said, what the council did, and what it couldn't and why."""

    title: CardText
    survey: Slug
    you_said: CardText
    we_did: CardText
    cannot_change: CardText | None = None
    status: CardStatus
    lead_contact: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    public_url: str | None = None
    languages: tuple[Language, ...] = Field(default=("en",), min_length=1)
    audience: Audience = Field(default_factory=Audience)
    purdah_exemption: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)] | None
    ) = None
    """Why this card may be sent during a pre-election period (absent: it waits until the period ends)."""
    messages: dict[
        Channel, dict[Language, Annotated[str, StringConstraints(min_length=1, max_length=4096)]]
    ] = Field(default_factory=dict)
    """Edited messages, per channel and language, replacing the generated ones (``loopline yswd preview``
    shows the generated text to start from); ``((placeholders))`` work here too."""

    @field_validator("public_url")
    @classmethod
    def _url_is_a_secure_link(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https://[^\s/]+\.[^\s]+", value.strip()):
            raise ValueError("must be a full https:// link, e.g. https://example.gov.uk/you-said-we-did")
        return None if value is None else value.strip()

    @model_validator(mode="before")
    @classmethod
    def _plain_strings_mean_default_language(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        languages = data.get("languages") or ["en"]
        default = languages[0] if isinstance(languages, list | tuple) and languages else "en"
        data = dict(data)
        if data.get("cannot_change") is None or (
            isinstance(data.get("cannot_change"), str) and not data["cannot_change"].strip()
        ):
            data.pop("cannot_change", None)  # blank means "not given", so the status rule explains it
        for key in _TEXT_FIELDS:
            if isinstance(data.get(key), str):
                data[key] = {default: data[key]}
        return data

    @model_validator(mode="after")
    def _check_consistency(self) -> Card:
        if len(set(self.languages)) != len(self.languages):
            raise FieldProblem("languages must not repeat", "languages")
        if self.status == "not_possible" and self.cannot_change is None:
            raise FieldProblem(
                "a card whose status is not_possible must say what couldn't change and why", "cannot_change"
            )
        for key in _TEXT_FIELDS:
            text: CardText | None = getattr(self, key)
            if text is not None and self.default_language not in text:
                raise FieldProblem(f"no text in the default language {self.default_language!r}", key)
        return self

    @property
    def default_language(self) -> str:
        return self.languages[0]

    @property
    def exempt_from_purdah(self) -> bool:
        return self.purdah_exemption is not None

    def text(self, field: Literal["title", "you_said", "we_did", "cannot_change"], language: str) -> str:
        """A text field in ``language`` (the default language when there is no translation); "" if absent."""
        value: CardText | None = getattr(self, field)
        return "" if value is None else text_in(value, language, self.default_language)


def card_advice(card: Card) -> tuple[str, ...]:
    """Things worth fixing before approval that are not errors (shown to the writer, never blocking)."""
    advice = []
    if card.cannot_change is None:
        advice.append(
            "Say what couldn't change and why (cannot_change): residents trust a council that explains."
        )
    if card.public_url is None:
        advice.append("Add public_url so residents can read the full outcome report.")
    return tuple(advice)


def _as_answer_text(value: Any) -> Any:
    if isinstance(value, bool):  # in case a YAML 1.1 reader turned yes/no into booleans
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return value


# Reading a card file


class CardFileError(YamlFileError):
    """A card file that cannot be loaded. ``str()`` gives one "file:line: field: message" per problem."""


_NEAREST_WHEN_MISSING = {"cannot_change": ("status",)}
"""A missing field's problem points at the line of the field that made it required."""


def parse_card(text: str, source: str, *, survey: Survey | None = None) -> Card:
    """Validate one card file's text; ``source`` names the file in errors.

    With ``survey``, the card must be for that survey and its audience must name that survey's questions
    and answers that are possible.
    """
    document = read_yaml(
        text,
        source,
        error=CardFileError,
        expected="a mapping of card fields",
        nearest_when_missing=_NEAREST_WHEN_MISSING,
    )
    card = validate(Card, document, source, error=CardFileError)
    if survey is not None:
        problems = _problems_against(card, survey, document)
        if problems:
            raise CardFileError(source, problems)
    return card


def _problems_against(card: Card, survey: Survey, document: YamlDocument) -> list[Problem]:
    problems: list[Problem] = []

    def add(message: str, *loc: str) -> None:
        problems.append(document.problem(message, *loc))

    if card.survey != survey.slug:
        add(f"this card is for {card.survey!r}, not the survey {survey.slug!r}", "survey")
    known = {question.id: question for question in survey.questions}
    for question_id, allowed in card.audience.questions.items():
        where = ("audience", "questions", question_id)
        question = known.get(question_id)
        if question is None:
            add(f"{survey.slug!r} has no question {question_id!r}", *where)
            continue
        possible = _possible_answers(question)
        if possible is None:
            add(f"{question_id!r} is a free-text question: target its themes instead", *where)
            continue
        unknown = [value for value in allowed if value not in possible]
        if unknown:
            possible_text = ", ".join(sorted(possible))
            add(f"{unknown} are not possible answers to {question_id!r} (possible: {possible_text})", *where)
    for question_id in card.audience.max_rating:
        where = ("audience", "max_rating", question_id)
        question = known.get(question_id)
        if question is None:
            add(f"{survey.slug!r} has no question {question_id!r}", *where)
        elif question.type != "scale":
            add(f"max_rating needs a scale question, and {question_id!r} is {question.type}", *where)
    return problems


def _possible_answers(question: Question) -> set[str] | None:
    if question.type == "choice":
        return {option.id for option in question.options}
    if question.type == "scale":
        return {str(n) for n in range(question.min, question.max + 1)}
    if question.type == "yesno":
        return {"yes", "no"}
    return None


# Who a card is for


def matches(
    audience: Audience, answers: Mapping[str, str | None], ward: str | None, themes: Collection[str]
) -> bool:
    """Whether a participant is in a card's audience (the SQL version of this rule lives in ``store/``).

    ``answers`` are the participant's answers to the card's survey by question id (None when skipped),
    ``ward`` their ward if known, ``themes`` the themes their answers were tagged with. Values compare
    exactly, as in SQL. A participant without the answer, ward or theme a condition needs is not in the
    audience.
    """
    for question_id, allowed in audience.questions.items():
        if answers.get(question_id) not in allowed:
            return False
    for question_id, highest in audience.max_rating.items():
        rating = _whole_number(answers.get(question_id))
        if rating is None or rating > highest:
            return False
    if audience.wards and ward not in audience.wards:
        return False
    return not audience.themes or not set(audience.themes).isdisjoint(themes)


def _whole_number(answer: str | None) -> int | None:
    if answer is None:
        return None
    try:
        return int(answer.strip())
    except ValueError:
        return None


# The message


_PHRASES: dict[str, dict[str, str]] = {
    "you_said": {"en": "You said:", "cy": "Fe ddywedoch chi:"},
    "done": {"en": "We did:", "cy": "Fe wnaethon ni:"},
    "not_possible": {"en": "We did:", "cy": "Fe wnaethon ni:"},
    "in_progress": {"en": "What we're doing:", "cy": "Beth rydyn ni'n ei wneud:"},
    "planned": {"en": "What we'll do:", "cy": "Beth fyddwn ni'n ei wneud:"},
    "cannot_change": {"en": "What we couldn't change:", "cy": "Beth na allen ni ei newid:"},
    "more": {"en": "More:", "cy": "Mwy:"},
    "pulse_question": {"en": "Did this answer your concern?", "cy": "Ydy hyn yn ateb eich pryder?"},
    "pulse_sms": {
        "en": "Reply 1 Yes, 2 Partly, 3 No, or STOP to stop.",
        "cy": "Atebwch 1 Ydy, 2 Yn rhannol, 3 Nac ydy, neu STOP i stopio.",
    },
    "yes": {"en": "Yes", "cy": "Ydy"},
    "partly": {"en": "Partly", "cy": "Yn rhannol"},
    "no": {"en": "No", "cy": "Nac ydy"},
}

PULSE_CHOICES: tuple[PulseAnswer, ...] = ("yes", "partly", "no")
"""The pulse answers in the order residents see them (SMS replies 1, 2, 3)."""


def _say(key: str, language: str) -> str:
    phrase = _PHRASES[key]
    return phrase.get(language) or phrase["en"]


def pulse_buttons(language: str) -> tuple[tuple[str, str], ...]:
    """(label, value) for each pulse answer, for Telegram buttons."""
    return tuple((_say(choice, language), choice) for choice in PULSE_CHOICES)


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str
    buttons: tuple[tuple[str, str], ...] = ()  # (label, value); Telegram only

    @property
    def choices(self) -> tuple[Choice, ...]:
        """The buttons as the engine's ``Choice`` effects."""
        return tuple(Choice(label, value) for label, value in self.buttons)


def default_template(card: Card, *, channel: Channel, language: str) -> str:
    """The message a card becomes, as an editable template (``((placeholders))`` in the card are kept).

    Plain and short, most important first: the title, what residents said, what the council did (or is
    doing, or will do), what it couldn't change, a link, then "Did this answer your concern?" (SMS adds
    how to reply and how to stop; Telegram gets buttons instead).
    """
    language = _card_language(card, language)
    parts = [
        _sentence(card.text("title", language)),
        f"{_say('you_said', language)} {_sentence(card.text('you_said', language))}",
        f"{_say(card.status, language)} {_sentence(card.text('we_did', language))}",
    ]
    if card.cannot_change is not None:
        parts.append(f"{_say('cannot_change', language)} {_sentence(card.text('cannot_change', language))}")
    if card.public_url is not None:
        parts.append(f"{_say('more', language)} {card.public_url}")
    parts.append(_say("pulse_question", language))
    if channel == "sms":
        parts.append(_say("pulse_sms", language))
    return " ".join(parts)


def render_message(card: Card, *, channel: Channel, language: str, values: Mapping[str, str]) -> Rendered:
    """The card's message (edited, or else generated), filled in with ``values``; raises
    ``MissingPlaceholder``."""
    language = _card_language(card, language)
    edited = card.messages.get(channel, {}).get(language)
    template = edited if edited is not None else default_template(card, channel=channel, language=language)
    return Rendered(
        render_template(template, values), pulse_buttons(language) if channel == "telegram" else ()
    )


def _card_language(card: Card, language: str) -> str:
    """``language`` when the card is written in it; otherwise the card's default, so nothing is mixed."""
    return language if language in card.languages else card.default_language


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?)" else text + "."


# Templates with ((placeholders))

_PLACEHOLDER = re.compile(r"\(\(([^()]+)\)\)")


class MissingPlaceholder(ValueError):
    """A template names placeholders with no value (found at preview, so nothing is sent half-filled)."""

    def __init__(self, names: Collection[str]) -> None:
        self.names = tuple(sorted(names))
        super().__init__("no value for " + ", ".join(f"(({name}))" for name in self.names))


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


def placeholders(template: str) -> set[str]:
    """The placeholder names in a template, as written (trimmed)."""
    return {" ".join(match.group(1).split()) for match in _PLACEHOLDER.finditer(template)}


def render_template(template: str, values: Mapping[str, str]) -> str:
    """Fill ``((name))`` placeholders (names ignore case and extra spaces, as in GOV.UK Notify).

    A placeholder without a value, or whose value is blank, raises ``MissingPlaceholder`` naming all of
    them. Values are inserted as they are: a value containing "((x))" is not filled in again.
    """
    given = {_key(name): value for name, value in values.items() if value.strip()}
    missing = {name for name in placeholders(template) if _key(name) not in given}
    if missing:
        raise MissingPlaceholder(missing)
    return _PLACEHOLDER.sub(lambda match: given[_key(match.group(1))], template)


# SMS and Telegram previews

_GSM_REPLACEMENTS: dict[str, str] = {
    "\u2018": "'",  # ‘ left single quote
    "\u2019": "'",  # ’ right single quote / apostrophe
    "\u201a": "'",  # ‚ low single quote
    "\u201b": "'",  # ‛
    "\u2032": "'",  # ′ prime
    "\u00b4": "'",  # ´ acute accent
    "`": "'",
    "\u201c": '"',  # “
    "\u201d": '"',  # ”
    "\u201e": '"',  # „
    "\u201f": '"',  # ‟
    "\u2033": '"',  # ″
    "\u00ab": '"',  # «
    "\u00bb": '"',  # »
    "\u2039": "'",  # ‹
    "\u203a": "'",  # ›
    "\u2010": "-",  # ‐ hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # ‒ figure dash
    "\u2013": "-",  # – en dash
    "\u2014": "-",  # — em dash
    "\u2015": "-",  # ― horizontal bar
    "\u2212": "-",  # − minus sign
    "\u2026": "...",  # … ellipsis
    "\u00a0": " ",  # no-break space
    "\u2002": " ",
    "\u2003": " ",
    "\u2007": " ",
    "\u2009": " ",  # thin space
    "\u202f": " ",  # narrow no-break space
    "\t": " ",
    "\u200b": "",  # zero-width space
    "\u200c": "",
    "\u200d": "",
    "\u2060": "",  # word joiner
    "\ufeff": "",  # byte order mark
    "\u00ad": "",  # soft hyphen
    "\u2022": "-",  # • bullet
    "\u00b7": "-",  # · middle dot
    "\u00d7": "x",  # ×
}
"""Typographic characters that force UCS-2 and have a plain GSM equivalent (letters are never changed:
Welsh ŵ and ŷ keep their meaning only as they are)."""


@dataclass(frozen=True, slots=True)
class Replacement:
    character: str  # a character that forces UCS-2
    count: int  # how often it appears
    replacement: str | None  # the GSM-safe text offered, None when there is none (emoji, ŵ)


@dataclass(frozen=True, slots=True)
class SmsPreview:
    text: str
    encoding: Literal["GSM-7", "UCS-2"]
    length: int  # GSM-7 septets (extension characters count 2) or UCS-2 code units (emoji count 2)
    segments: int  # per message
    recipients: int
    total_segments: int
    cost: Decimal
    forcing_ucs2: tuple[Replacement, ...]  # in order of first appearance
    gsm_safe_text: str | None  # ``gsm_safe(text)`` when it differs from the text
    gsm_safe_segments: int | None  # per message, for ``gsm_safe_text``
    gsm_safe_cost: Decimal | None

    @property
    def saving(self) -> Decimal:
        """What sending ``gsm_safe_text`` instead would save (0 when nothing would)."""
        return Decimal(0) if self.gsm_safe_cost is None else self.cost - self.gsm_safe_cost


def gsm_safe(text: str) -> str:
    """``text`` with smart quotes, dashes, ellipses and odd spaces replaced by plain GSM characters."""
    return "".join(_GSM_REPLACEMENTS.get(ch, ch) for ch in text)


def _is_gsm_char(ch: str) -> bool:
    return ch in GSM_BASIC or ch in GSM_EXTENSION


def _length(text: str) -> int:
    if is_gsm(text):
        return sum(2 if ch in GSM_EXTENSION else 1 for ch in text)
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def sms_preview(text: str, *, recipients: int, price_per_segment: Decimal) -> SmsPreview:
    """What sending ``text`` to ``recipients`` people costs, and what would make it cheaper."""
    if recipients < 0:
        raise ValueError("recipients must not be negative")
    if price_per_segment < 0:
        raise ValueError("price_per_segment must not be negative")
    counts: dict[str, int] = {}
    for ch in text:
        if not _is_gsm_char(ch):
            counts[ch] = counts.get(ch, 0) + 1
    forcing = tuple(Replacement(ch, n, _GSM_REPLACEMENTS.get(ch)) for ch, n in counts.items())
    per_message = segments(text)
    safe = gsm_safe(text)
    safe_segments = segments(safe) if safe != text else None
    return SmsPreview(
        text=text,
        encoding="GSM-7" if is_gsm(text) else "UCS-2",
        length=_length(text),
        segments=per_message,
        recipients=recipients,
        total_segments=per_message * recipients,
        cost=per_message * recipients * price_per_segment,
        forcing_ucs2=forcing,
        gsm_safe_text=safe if safe != text else None,
        gsm_safe_segments=safe_segments,
        gsm_safe_cost=None if safe_segments is None else safe_segments * recipients * price_per_segment,
    )


TELEGRAM_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class TelegramPreview:
    text: str
    length: int  # UTF-16 code units, as Telegram counts (an emoji counts 2)
    limit: int = TELEGRAM_LIMIT

    @property
    def fits(self) -> bool:
        """Telegram accepts 1 to 4096 characters."""
        return 1 <= self.length <= self.limit

    @property
    def problem(self) -> str | None:
        if self.length == 0:
            return "the message is empty"
        if self.length > self.limit:
            return f"the message is {self.length} characters; Telegram allows {self.limit}"
        return None


def telegram_preview(text: str) -> TelegramPreview:
    """Whether ``text`` fits in one Telegram message."""
    return TelegramPreview(text, len(text.encode("utf-16-le")) // 2)


# Reading the pulse reply

_THUMBS = {"\N{THUMBS UP SIGN}": "yes", "\N{THUMBS DOWN SIGN}": "no"}
_COURTESY = re.compile(r"[\s,.!]*\b(?:thanks?|thank you|thx|ta|cheers|please|diolch)\b[\s,.!]*$")
_PULSE_WORDS: dict[str, PulseAnswer] = {
    **dict.fromkeys(YES_WORDS | WELSH_YES | {"it did", "ydw", "ydi"}, "yes"),
    **dict.fromkeys(NO_WORDS | WELSH_NO | {"not really", "not at all", "nac ydy", "nac ydi"}, "no"),
    **dict.fromkeys(
        {
            "partly",
            "partially",
            "part",
            "in part",
            "sort of",
            "kind of",
            "somewhat",
            "a bit",
            "a little",
            "some",
            "rhannol",
            "yn rhannol",
            "rhywfaint",
            "braidd",
        },
        "partly",
    ),
    "1": "yes",
    "2": "partly",
    "3": "no",
}


def read_pulse(reply: str) -> PulseAnswer | None:
    """What a reply to "Did this answer your concern?" means: 1/2/3, yes/partly/no (English or Welsh,
    with small typos, a trailing "thanks" or a thumbs up/down), or None when it is something else."""
    stripped = reply.strip()
    thumbs = {_THUMBS[ch] for ch in stripped if ch in _THUMBS}
    if len(thumbs) == 1 and not any(ch.isalnum() for ch in stripped):
        return "yes" if "yes" in thumbs else "no"
    answer = normalise(reply)
    answer = normalise(_COURTESY.sub("", answer)) or answer
    if answer in _PULSE_WORDS:
        return _PULSE_WORDS[answer]
    if len(answer) < 3 or any(ch.isdigit() for ch in answer):
        return None
    # a small typo (a reply of 3 or more letters): close to a word with the same first letter, e.g. "yess"
    words = [word for word in _PULSE_WORDS if word[0] == answer[0]]
    close = difflib.get_close_matches(answer, words, 3, 0.75)
    meanings = {_PULSE_WORDS[word] for word in close}
    return meanings.pop() if len(meanings) == 1 else None
