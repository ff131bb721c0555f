"""Slack adapter: staff report the "word on the street" with ``/street``, shortcuts and a modal.

Inbound (HTTP mode, one URL: ``{public_url}/slack/events`` for commands, interactivity and events):

* :func:`dispatch` verifies ``X-Slack-Signature`` over the raw body with slack_sdk's own
  ``SignatureVerifier`` **before** anything is parsed (Bolt parses first and answers 500 to a
  non-numeric timestamp or to unsigned garbage), answers ``ssl_check``, then hands the request to the
  Bolt ``AsyncApp`` made by :func:`build_bolt_app`. Bad input is a 401 or a 400, never a 500.
* The Bolt listeners are thin typed adapters: they turn Bolt's body into the value types below
  (:class:`QuickReport`, :class:`StreetCommand`, :class:`ReportForm`, :class:`ViewSubmission`), call the
  matching :class:`SlackHandlers` method (implemented in ``bots/``), and acknowledge with what it returns.
  The app runs with ``process_before_response=True``: the handler has persisted the report before Slack
  gets its 200, so a crash can cost a retry but never a report. Slack gives up after 3 seconds.
* Authorization is static and offline: the app is for one workspace (:class:`BotIdentity`), requests
  from any other are refused, and Bolt never calls ``auth.test`` per request (where an ``ok: false``
  answer would make Bolt reply 200 and silently drop the event). Call :func:`whoami` at start-up
  instead, so a bad token fails loudly once.
* Anything no listener handles (an event type, action or callback id we do not use) is acknowledged
  with **200 and an empty body** (:data:`UNHANDLED_STATUS`), deliberately: Bolt's default 404 makes
  Slack retry and counts toward disabling the app's event subscription.

Outbound: :func:`web_client` builds the SDK's ``AsyncWebClient`` with rate-limit (``Retry-After``) and
server-error retries and without environment proxies; :func:`post_message`, :func:`post_ephemeral`,
:func:`open_view` and :func:`whoami` map ``SlackApiError`` to :mod:`channels.errors`.

Nothing in this module logs message text, report text or tokens. Note that third-party loggers may:
Bolt logs request bodies at DEBUG (and on a failed signature check, which is why Bolt's own check is
replaced by :func:`dispatch`'s), slack_sdk logs request and response bodies at DEBUG. Keep
``slack_bolt`` and ``slack_sdk`` at INFO or above in production.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol, TypeVar, cast, get_args
from urllib.parse import urlsplit

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.jitter import Jitter
from slack_sdk.http_retry.request import HttpRequest as RetryRequest
from slack_sdk.http_retry.response import HttpResponse as RetryResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.signature import Clock, SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from channels.base import HttpRequest
from channels.errors import BadRequest, Misconfigured, ProviderUnavailable, Rejected, SendError

__all__ = [
    "ACTION_ADD_DETAIL",
    "BLOCK_FOLLOW_UP",
    "BLOCK_HEARD",
    "BLOCK_HOW_MANY",
    "BLOCK_KIND",
    "BLOCK_PLACE",
    "BLOCK_PLACE_OTHER",
    "BLOCK_QUOTE",
    "BLOCK_THEMES",
    "BOT_SCOPES",
    "EVENTS_PATH",
    "HOW_MANY",
    "HOW_MANY_LABELS",
    "KINDS",
    "KIND_LABELS",
    "MAX_HEARD_CHARS",
    "MAX_PLACE_CHARS",
    "MAX_QUOTE_CHARS",
    "MESSAGE_SHORTCUT",
    "MODAL_CALLBACK_ID",
    "SLASH_COMMAND",
    "SUBCOMMANDS",
    "UNHANDLED_STATUS",
    "UNKNOWN_WORKSPACE_TEXT",
    "BotIdentity",
    "HowMany",
    "Kind",
    "LooplineSlackApp",
    "ModalSource",
    "QuickReport",
    "ReportForm",
    "SlackHandlers",
    "StaffUser",
    "StreetCommand",
    "Subcommand",
    "ViewSubmission",
    "build_bolt_app",
    "classify_slack_error",
    "dispatch",
    "ephemeral",
    "escape_mrkdwn",
    "manifest",
    "open_view",
    "parse_view_submission",
    "post_ephemeral",
    "post_message",
    "recorded_message",
    "report_modal",
    "text_blocks",
    "verify",
    "view_errors",
    "web_client",
    "whoami",
]

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

# -- identifiers Slack and the manifest share ----------------------------------------------------------

#: Path of the one request URL (commands, interactivity and events) under the public URL.
EVENTS_PATH: Final = "/slack/events"
SLASH_COMMAND: Final = "/street"
GLOBAL_SHORTCUT: Final = "street_report"
MESSAGE_SHORTCUT: Final = "report_heard"
ACTION_ADD_DETAIL: Final = "add_detail"
MODAL_CALLBACK_ID: Final = "street_report"
BOT_SCOPES: Final = ("commands", "chat:write", "users:read", "app_mentions:read")
BOT_EVENTS: Final = ("app_mention",)

#: Block ids of the report modal; each input's action id is the same string.
BLOCK_HEARD: Final = "heard"
BLOCK_KIND: Final = "kind"
BLOCK_PLACE: Final = "place"
BLOCK_PLACE_OTHER: Final = "place_other"
BLOCK_HOW_MANY: Final = "how_many"
BLOCK_THEMES: Final = "themes"
BLOCK_QUOTE: Final = "quote"
BLOCK_FOLLOW_UP: Final = "follow_up"
_FOLLOW_UP_YES: Final = "yes"

MAX_HEARD_CHARS: Final = 3000  # also Slack's ceiling for a plain_text_input
MAX_QUOTE_CHARS: Final = 1000
MAX_PLACE_CHARS: Final = 150

Kind = Literal["concern", "myth", "idea", "compliment", "question"]
HowMany = Literal["one", "a_few", "many"]
Subcommand = Literal["modal", "mine", "themes", "help"]
ModalSource = Literal["shortcut", "message_shortcut", "add_detail"]

KINDS: Final[tuple[Kind, ...]] = get_args(Kind)
KIND_LABELS: Final[Mapping[Kind, str]] = {
    "concern": "A concern",
    "myth": "A myth or rumour",
    "idea": "An idea or suggestion",
    "compliment": "A compliment",
    "question": "A question",
}
HOW_MANY: Final[tuple[HowMany, ...]] = get_args(HowMany)
HOW_MANY_LABELS: Final[Mapping[HowMany, str]] = {
    "one": "One person",
    "a_few": "A few people",
    "many": "Many people",
}
#: ``/street <word> ...`` where <word> is one of these is a command, anything else is a quick report.
#: ``/street`` alone is the ``"modal"`` command (open the report form).
SUBCOMMANDS: Final[tuple[Subcommand, ...]] = ("mine", "themes", "help")

#: What a request from a workspace other than ours gets (HTTP 200, so Slack shows it and does not retry).
UNKNOWN_WORKSPACE_TEXT: Final = (
    "Loopline is not set up for this Slack workspace, so nothing was recorded. "
    "Ask your Loopline administrator."
)
#: The status of the deliberate answer to a request no listener handles (see the module docstring).
UNHANDLED_STATUS: Final = 200

_MAX_SKEW_SECONDS: Final = 300  # SignatureVerifier's window, both ways
_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_SLOW_HANDLER_SECONDS: Final = 2.5
_PLAIN_TEXT_MAX: Final = 75  # option text
_OPTION_VALUE_MAX: Final = 150
_SECTION_TEXT_MAX: Final = 3000
_MAX_OPTIONS: Final = 100
_PRIVATE_METADATA_MAX: Final = 3000


# -- value types ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StaffUser:
    """The Slack user behind a request. ``name`` is the Slack username (not necessarily a real name)."""

    team_id: str
    user_id: str
    name: str


@dataclass(frozen=True, slots=True)
class QuickReport:
    """``/street <text>``: a report in one line. ``text`` is exactly what Slack sent, markup included
    (``<@U123>``, ``<#C123|name>``, ``&amp;``): clean it (``flows.themes.clean_slack_text``) before
    showing or tagging it. There is no length limit here; Slack allows about 4,000 characters."""

    user: StaffUser
    text: str
    channel_id: str | None
    response_url: str | None


@dataclass(frozen=True, slots=True)
class StreetCommand:
    """``/street`` (``subcommand="modal"``: open the report form), ``/street mine``, ``/street help`` and
    ``/street themes [7d|30d] [ward]``. ``args`` are the words after the subcommand, unparsed: the
    handler knows the wards (a ward name may have spaces) and should answer an argument it does not
    understand with a hint, since ``/street themes of crime near the park`` lands here too."""

    user: StaffUser
    subcommand: Subcommand
    args: tuple[str, ...]
    trigger_id: str
    response_url: str | None


@dataclass(frozen=True, slots=True)
class ReportForm:
    """The report modal's fields.

    As a submission (``ViewSubmission.form``) it is validated: ``heard`` is non-empty and at most
    :data:`MAX_HEARD_CHARS`, ``kind`` is set, ``place`` is a ward or a typed place (or None).
    As a pre-fill (``initial`` of :func:`report_modal`) anything may be missing: ``kind=None`` leaves
    the choice open. ``heard`` and ``quote`` are plain text as typed (no Slack markup), except that a
    message shortcut pre-fills ``heard`` with the message's text, markup included.
    """

    heard: str
    kind: Kind | None = None
    place: str | None = None
    how_many: HowMany = "one"
    themes: tuple[str, ...] = ()
    quote: str | None = None
    follow_up: bool = False


@dataclass(frozen=True, slots=True)
class ViewSubmission:
    """A submitted report modal. ``form`` is None exactly when ``errors`` is not empty; ``errors`` maps a
    block id to the message Slack shows under that input. ``view_id`` + ``view_hash`` identify one
    submission: deduplicate on them (a double click submits twice)."""

    user: StaffUser
    view_id: str
    view_hash: str
    callback_id: str
    private_metadata: str
    form: ReportForm | None
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """The one workspace this app serves, and who the bot is there (from ``auth.test``: see
    :func:`whoami`). ``bot_user_id`` / ``bot_id`` let Bolt ignore the bot's own events."""

    team_id: str
    bot_user_id: str | None = None
    bot_id: str | None = None
    enterprise_id: str | None = None  # Enterprise Grid: requests of this org are ours too


class SlackHandlers(Protocol):
    """What Loopline does with staff requests; implemented in ``bots/``.

    Every method runs before Slack gets its answer, and Slack waits 3 seconds at most: persist, then
    return. An exception answers 500 (Slack shows an error to the user, and retries events).
    """

    async def quick_report(self, report: QuickReport) -> dict[str, Any]:
        """Record ``/street <text>``; return the response body (e.g. :func:`recorded_message`)."""
        ...

    async def street_command(self, command: StreetCommand) -> dict[str, Any] | None:
        """Answer a subcommand with a response body, or open a modal (``"modal"``) and return None."""
        ...

    async def open_report_modal(
        self,
        user: StaffUser,
        trigger_id: str,
        initial: ReportForm | None,
        source: ModalSource,
        report_id: int | None,
    ) -> None:
        """Open the report modal (:func:`report_modal`, :func:`open_view`) within 3 s of the trigger.

        ``source`` says what asked: the global shortcut (no pre-fill), the message shortcut
        (``initial.heard`` is the message's text, markup included) or the "Add detail" button of a
        recorded report (``report_id`` is that report; None otherwise).
        """
        ...

    async def submit_report(self, submission: ViewSubmission) -> dict[str, Any] | None:
        """Record a valid submission (``submission.form`` is never None here; invalid input is answered
        by the adapter). Return None to close the modal, or a view_submission response body such as
        :func:`view_errors` ``({"heard": "..."})`` to keep it open."""
        ...

    async def event(self, event_id: str, retry_num: int | None, event: Mapping[str, Any]) -> None:
        """An ``app_mention`` or ``message`` event (bots' own messages are filtered out). Slack retries
        with the same ``event_id`` and ``retry_num`` 1..3: deduplicate on ``event_id``."""
        ...


# -- small readers --------------------------------------------------------------------------------------


def _obj(value: object) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _clean(value: str) -> str:
    """Remove NUL: PostgreSQL ``text`` rejects it."""
    return value.replace("\x00", "")


def _required_str(payload: Mapping[str, Any], name: str, where: str) -> str:
    value = _str(payload.get(name))
    if not value:
        raise BadRequest(f"{where}.{name} is missing")
    return value


# -- verification ---------------------------------------------------------------------------------------


class _FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def verify(request: HttpRequest, *, signing_secret: str, now: float | None = None) -> bool:
    """True if ``X-Slack-Signature`` (v0) matches the raw body and ``X-Slack-Request-Timestamp`` is within
    300 seconds of ``now`` (default: the real clock), either way.

    The HMAC is slack_sdk's ``SignatureVerifier``. Never raises: missing or empty headers, a timestamp
    that is not plain digits, a body that is not UTF-8, an empty secret all give False.
    """
    timestamp = request.header("x-slack-request-timestamp")
    signature = request.header("x-slack-signature")
    if not timestamp or not signature or not _TIMESTAMP.fullmatch(timestamp):
        return False  # SignatureVerifier would raise ValueError from int("abc")
    if not signing_secret or not signing_secret.strip():
        return False
    try:
        request.body.decode("utf-8")
        verifier = SignatureVerifier(signing_secret, clock=_FixedClock(now) if now is not None else Clock())
        return verifier.is_valid(body=request.body, timestamp=timestamp, signature=signature)
    except (ValueError, TypeError, UnicodeError):
        return False


# -- parsing Bolt bodies into value types ---------------------------------------------------------------


def _staff_from_interaction(payload: Mapping[str, Any]) -> StaffUser:
    user = _obj(payload.get("user"))
    if user is None:
        raise BadRequest("payload.user is missing")
    user_id = _required_str(user, "id", "user")
    team = _obj(payload.get("team"))
    view = _obj(payload.get("view"))
    team_id = (
        (_str(team.get("id")) if team else None)
        or _str(user.get("team_id"))
        or (_str(view.get("team_id")) if view else None)
    )
    if not team_id:
        raise BadRequest("payload.team.id is missing")
    name = _str(user.get("username")) or _str(user.get("name")) or user_id
    return StaffUser(team_id=team_id, user_id=user_id, name=name)


def _staff_from_command(command: Mapping[str, Any]) -> StaffUser:
    user_id = _required_str(command, "user_id", "command")
    team_id = _required_str(command, "team_id", "command")
    return StaffUser(team_id=team_id, user_id=user_id, name=_str(command.get("user_name")) or user_id)


def _parse_command(command: Mapping[str, Any]) -> QuickReport | StreetCommand:
    user = _staff_from_command(command)
    text = _clean(_str(command.get("text")) or "")
    response_url = _str(command.get("response_url")) or None
    words = text.split()
    if not words or words[0].casefold() in SUBCOMMANDS:
        subcommand = cast(Subcommand, words[0].casefold()) if words else "modal"
        return StreetCommand(
            user=user,
            subcommand=subcommand,
            args=tuple(words[1:]),
            trigger_id=_required_str(command, "trigger_id", "command"),
            response_url=response_url,
        )
    return QuickReport(
        user=user,
        text=text.strip(),
        channel_id=_str(command.get("channel_id")) or None,
        response_url=response_url,
    )


def _state_entry(values: Mapping[str, Any], block_id: str) -> dict[str, Any] | None:
    block = _obj(values.get(block_id))
    if block is None:
        return None
    return _obj(block.get(block_id)) or next((v for v in block.values() if isinstance(v, dict)), None)


def _text_value(values: Mapping[str, Any], block_id: str) -> str | None:
    entry = _state_entry(values, block_id)
    value = _str(entry.get("value")) if entry else None
    if value is None:
        return None
    value = _clean(value).strip()
    return value or None


def _selected(values: Mapping[str, Any], block_id: str) -> str | None:
    entry = _state_entry(values, block_id)
    option = _obj(entry.get("selected_option")) if entry else None
    return _str(option.get("value")) if option else None


def _selected_many(values: Mapping[str, Any], block_id: str) -> tuple[str, ...]:
    entry = _state_entry(values, block_id)
    options = entry.get("selected_options") if entry else None
    if not isinstance(options, list):
        return ()
    chosen = (_str(o.get("value")) for o in options if isinstance(o, dict))
    return tuple(dict.fromkeys(value for value in chosen if value))


def _too_long(limit: int) -> str:
    return f"Too long ({limit:,} characters at most)"


def _read_form(values: Mapping[str, Any]) -> tuple[ReportForm | None, dict[str, str]]:
    errors: dict[str, str] = {}
    heard = _text_value(values, BLOCK_HEARD)
    if heard is None:
        errors[BLOCK_HEARD] = "What you heard is required"
    elif len(heard) > MAX_HEARD_CHARS:
        errors[BLOCK_HEARD] = _too_long(MAX_HEARD_CHARS)

    kind = _selected(values, BLOCK_KIND)
    if kind not in KINDS:
        errors[BLOCK_KIND] = "Choose what kind of thing you heard"

    ward = _selected(values, BLOCK_PLACE)
    typed_place = _text_value(values, BLOCK_PLACE_OTHER)
    if ward and typed_place:
        errors[BLOCK_PLACE_OTHER] = "Pick a ward from the list or type a place, not both"
    elif typed_place and len(typed_place) > MAX_PLACE_CHARS:
        errors[BLOCK_PLACE_OTHER] = _too_long(MAX_PLACE_CHARS)

    how_many = _selected(values, BLOCK_HOW_MANY)
    if how_many is None and _state_entry(values, BLOCK_HOW_MANY) is None:
        how_many = "one"  # a view without the question: the default
    if how_many not in HOW_MANY:
        errors[BLOCK_HOW_MANY] = "Say how many people said this"

    quote = _text_value(values, BLOCK_QUOTE)
    if quote is not None and len(quote) > MAX_QUOTE_CHARS:
        errors[BLOCK_QUOTE] = _too_long(MAX_QUOTE_CHARS)

    if errors:
        return None, errors
    assert heard is not None
    return (
        ReportForm(
            heard=heard,
            kind=cast(Kind, kind),
            place=ward or typed_place,
            how_many=cast(HowMany, how_many),
            themes=_selected_many(values, BLOCK_THEMES),
            quote=quote,
            follow_up=_FOLLOW_UP_YES in _selected_many(values, BLOCK_FOLLOW_UP),
        ),
        {},
    )


def parse_view_submission(payload: Mapping[str, Any]) -> ViewSubmission:
    """Read a ``view_submission`` payload of the report modal (``view.state.values``).

    Invalid input (no "heard", too long, no kind, a ward and a typed place...) comes back in ``errors``
    keyed by block id, with ``form=None``. A payload without ``view``, ``view.id`` or ``view.state``
    raises :class:`~channels.errors.BadRequest`.
    """
    view = _obj(payload.get("view"))
    if view is None:
        raise BadRequest("payload.view is missing")
    state = _obj(view.get("state"))
    values = _obj(state.get("values")) if state else None
    if values is None:
        raise BadRequest("payload.view.state.values is missing")
    form, errors = _read_form(values)
    return ViewSubmission(
        user=_staff_from_interaction(payload),
        view_id=_required_str(view, "id", "view"),
        view_hash=_str(view.get("hash")) or "",
        callback_id=_str(view.get("callback_id")) or "",
        private_metadata=_str(view.get("private_metadata")) or "",
        form=form,
        errors=errors,
    )


def _retry_num(request: AsyncBoltRequest) -> int | None:
    values = request.headers.get("x-slack-retry-num") or ()
    raw = values[0].strip() if values else ""
    return int(raw) if re.fullmatch(r"[0-9]{1,3}", raw) else None


# -- Block Kit ------------------------------------------------------------------------------------------


def escape_mrkdwn(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` so plain text shows as typed in a ``mrkdwn`` field (no mentions,
    links or ``<!channel>`` can be smuggled in)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(text: str, limit: int | None = None) -> dict[str, Any]:
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return {"type": "plain_text", "text": text, "emoji": True}


def _option(label: str, value: str) -> dict[str, Any]:
    if not value or len(value) > _OPTION_VALUE_MAX:
        raise ValueError(f"an option value must be 1-{_OPTION_VALUE_MAX} characters: {value[:20]!r}…")
    return {"text": _plain(label or value, _PLAIN_TEXT_MAX), "value": value}


def _input(
    block_id: str,
    label: str,
    element: dict[str, Any],
    *,
    optional: bool = False,
    hint: str | None = None,
) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "input",
        "block_id": block_id,
        "label": _plain(label),
        "element": {"action_id": block_id, **element},
        "optional": optional,
    }
    if hint:
        block["hint"] = _plain(hint)
    return block


def report_modal(
    *,
    wards: Sequence[str],
    themes: Sequence[tuple[str, str]],
    initial: ReportForm | None,
    suggested: Sequence[str],
    private_metadata: str = "",
) -> dict[str, Any]:
    """The report modal (``views.open`` / ``views.update`` ``view``), callback id ``street_report``.

    Inputs, each with block id = action id (``BLOCK_*``): what was heard (required, multi-line, at
    most 3,000 characters), kind (required select), ward (optional select, left out when ``wards`` is
    empty) or another place (optional text), how many people (radio buttons), themes
    (``themes`` = (name, label) pairs; the ``suggested`` names are pre-selected), their exact words
    (optional) and whether someone should follow it up (checkbox).

    ``initial`` pre-fills everything it sets (a place in ``wards`` selects that ward, any other place
    fills the text input); a pre-filled "heard" longer than 3,000 characters is cut to fit. Raises
    ``ValueError`` for lists Slack would refuse: more than 100 wards or themes, a value over 150
    characters, ``private_metadata`` over 3,000 characters.
    """
    if len(private_metadata) > _PRIVATE_METADATA_MAX:
        raise ValueError(f"private_metadata is limited to {_PRIVATE_METADATA_MAX} characters")
    ward_names = list(dict.fromkeys(w.strip() for w in wards if w.strip()))
    theme_pairs = list(dict((name, label) for name, label in themes if name).items())
    if len(ward_names) > _MAX_OPTIONS or len(theme_pairs) > _MAX_OPTIONS:
        raise ValueError(f"Slack selects hold at most {_MAX_OPTIONS} options (wards, themes)")
    form = initial or ReportForm(heard="")

    heard_element: dict[str, Any] = {
        "type": "plain_text_input",
        "multiline": True,
        "max_length": MAX_HEARD_CHARS,
        "placeholder": _plain("e.g. People on Elm Road think the library is closing"),
    }
    if form.heard:
        heard_element["initial_value"] = form.heard[:MAX_HEARD_CHARS]
    blocks: list[dict[str, Any]] = [
        _input(
            BLOCK_HEARD,
            "What did you hear?",
            heard_element,
            hint="In your own words. Leave out names, phone numbers and addresses.",
        )
    ]

    kind_options = [_option(KIND_LABELS[k], k) for k in KINDS]
    kind_element: dict[str, Any] = {
        "type": "static_select",
        "placeholder": _plain("Choose one"),
        "options": kind_options,
    }
    if form.kind is not None:
        kind_element["initial_option"] = kind_options[KINDS.index(form.kind)]
    blocks.append(_input(BLOCK_KIND, "Is it a…", kind_element))

    typed_place = form.place
    if ward_names:
        ward_options = [_option(w, w) for w in ward_names]
        ward_element: dict[str, Any] = {
            "type": "static_select",
            "placeholder": _plain("Choose a ward"),
            "options": ward_options,
        }
        if form.place in ward_names:
            ward_element["initial_option"] = ward_options[ward_names.index(form.place)]
            typed_place = None
        blocks.append(_input(BLOCK_PLACE, "Where? (ward)", ward_element, optional=True))
    place_element: dict[str, Any] = {"type": "plain_text_input", "max_length": MAX_PLACE_CHARS}
    if typed_place:
        place_element["initial_value"] = typed_place[:MAX_PLACE_CHARS]
    blocks.append(
        _input(
            BLOCK_PLACE_OTHER,
            "Or another place" if ward_names else "Where?",
            place_element,
            optional=True,
            hint="A street, park or estate is fine. No house numbers.",
        )
    )

    how_options = [_option(HOW_MANY_LABELS[h], h) for h in HOW_MANY]
    blocks.append(
        _input(
            BLOCK_HOW_MANY,
            "How many people said this?",
            {
                "type": "radio_buttons",
                "options": how_options,
                "initial_option": how_options[HOW_MANY.index(form.how_many)],
            },
        )
    )

    if theme_pairs:
        theme_options = [_option(label, name) for name, label in theme_pairs]
        by_name = {name: option for (name, _), option in zip(theme_pairs, theme_options, strict=True)}
        chosen = [by_name[n] for n in dict.fromkeys([*form.themes, *suggested]) if n in by_name]
        theme_element: dict[str, Any] = {
            "type": "multi_static_select",
            "placeholder": _plain("Choose themes"),
            "options": theme_options,
        }
        if chosen:
            theme_element["initial_options"] = chosen
        blocks.append(
            _input(
                BLOCK_THEMES,
                "Themes",
                theme_element,
                optional=True,
                hint="Suggested from the words used: change them if they are wrong.",
            )
        )

    quote_element: dict[str, Any] = {
        "type": "plain_text_input",
        "multiline": True,
        "max_length": MAX_QUOTE_CHARS,
    }
    if form.quote:
        quote_element["initial_value"] = form.quote[:MAX_QUOTE_CHARS]
    blocks.append(_input(BLOCK_QUOTE, "Their exact words (optional)", quote_element, optional=True))

    follow_option = _option("Someone should follow this up", _FOLLOW_UP_YES)
    follow_element: dict[str, Any] = {"type": "checkboxes", "options": [follow_option]}
    if form.follow_up:
        follow_element["initial_options"] = [follow_option]
    blocks.append(_input(BLOCK_FOLLOW_UP, "Follow-up", follow_element, optional=True))

    return {
        "type": "modal",
        "callback_id": MODAL_CALLBACK_ID,
        "title": _plain("Street report"),
        "submit": _plain("Record"),
        "close": _plain("Cancel"),
        "private_metadata": private_metadata,
        "blocks": blocks,
    }


def view_errors(errors: Mapping[str, str]) -> dict[str, Any]:
    """The view_submission answer that keeps the modal open and shows ``errors`` (block id -> message)."""
    if not errors:
        raise ValueError("view_errors needs at least one error")
    return {"response_action": "errors", "errors": dict(errors)}


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def text_blocks(text: str) -> list[dict[str, Any]]:
    """``text`` (mrkdwn; escape anything users typed with :func:`escape_mrkdwn`) as section blocks,
    split to fit Slack's 3,000 characters per section."""
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": part}}
        for part in _chunks(text, _SECTION_TEXT_MAX)
        if part
    ]


def ephemeral(text: str, blocks: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """A response body only the requesting user sees (``response_type: ephemeral``); ``text`` is
    mrkdwn and is also the notification fallback."""
    body: dict[str, Any] = {"response_type": "ephemeral", "text": text}
    body["blocks"] = [dict(b) for b in blocks] if blocks is not None else text_blocks(text)
    return body


def recorded_message(
    report_text: str, suggestions: Sequence[tuple[str, str]], report_id: int
) -> dict[str, Any]:
    """The ephemeral "recorded" answer: what was recorded, the suggested themes and why
    (``suggestions`` = (label, why) pairs, e.g. ``("Fly-tipping", "matched 'mattress', 'dumped'")``),
    and an "Add detail" button (action id ``add_detail``, value = ``report_id``).

    ``report_text`` is plain text as people read it (for ``/street`` text, pass it through
    ``clean_slack_text`` first): it is escaped here, so nothing in it can mention or link.
    """
    shown = report_text.strip()
    limit = _SECTION_TEXT_MAX - 200
    if len(shown) > limit:
        shown = shown[:limit] + "…"
    quoted = "\n".join("> " + line for line in escape_mrkdwn(shown).splitlines() or [""])
    if suggestions:
        lines = [f"• *{escape_mrkdwn(label)}*: {escape_mrkdwn(why)}" for label, why in suggestions[:10]]
        themes_text = "Suggested themes (change them with *Add detail*):\n" + "\n".join(lines)
    else:
        themes_text = "No theme suggested. Use *Add detail* to choose one."
    labels = ", ".join(label for label, _ in suggestions[:10])
    fallback = "Recorded your street report" + (f" (themes: {labels})" if labels else "")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": ":white_check_mark: *Recorded.* Thank you."}},
        {"type": "section", "text": {"type": "mrkdwn", "text": quoted}},
        {"type": "section", "text": {"type": "mrkdwn", "text": themes_text[:_SECTION_TEXT_MAX]}},
        {
            "type": "actions",
            "block_id": "recorded",
            "elements": [
                {
                    "type": "button",
                    "action_id": ACTION_ADD_DETAIL,
                    "text": _plain("Add detail"),
                    "value": str(report_id),
                }
            ],
        },
    ]
    return {"response_type": "ephemeral", "text": fallback[:_SECTION_TEXT_MAX], "blocks": blocks}


def reports_message(heading: str, reports: Sequence[tuple[int, str]]) -> dict[str, Any]:
    """An ephemeral list of a staff member's reports, each (id, one-line summary) with an "Edit" button
    (action ``add_detail``) that reopens it in the form. At most 20 are shown."""
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": heading[:_SECTION_TEXT_MAX]}}
    ]
    for report_id, summary in reports[:20]:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": escape_mrkdwn(summary)[:_SECTION_TEXT_MAX]},
                "accessory": {
                    "type": "button",
                    "action_id": ACTION_ADD_DETAIL,
                    "text": _plain("Edit"),
                    "value": str(report_id),
                },
            }
        )
    return {"response_type": "ephemeral", "text": heading[:_SECTION_TEXT_MAX], "blocks": blocks}


# -- the Bolt app ---------------------------------------------------------------------------------------

_VERIFIED_KEY: Final = "loopline_verified"
_VERIFIED: Final = object()


class LooplineSlackApp(AsyncApp):
    """Bolt's ``AsyncApp`` plus what :func:`dispatch` needs. Build it with :func:`build_bolt_app`."""

    def __init__(self, *, signing_secret: str, identity: BotIdentity, **kwargs: Any) -> None:
        super().__init__(signing_secret=signing_secret, **kwargs)
        self.loopline_signing_secret = signing_secret
        self.loopline_identity = identity


class _StaticAuthorize(AsyncAuthorize):
    """Authorization without a network call: the configured bot token and identity, always."""

    def __init__(self, identity: BotIdentity, bot_token: str | None) -> None:
        # AsyncAuthorize.__init__ does nothing (and is untyped): not called.
        self._identity = identity
        self._bot_token = bot_token

    async def __call__(
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult | None:
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            bot_user_id=self._identity.bot_user_id,
            bot_id=self._identity.bot_id,
            bot_token=self._bot_token,
            user_id=user_id,
        )


class _Gate(AsyncMiddleware):
    """First middleware: only requests that came through :func:`dispatch` (which verified the signature),
    and only from our workspace (url_verification carries no team and is let through)."""

    def __init__(self, identity: BotIdentity) -> None:
        self._identity = identity

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse | None:
        # Socket Mode requests arrive over the app-token WebSocket, authenticated by the connection.
        if req.mode != "socket_mode" and req.context.get(_VERIFIED_KEY) is not _VERIFIED:
            logger.warning("Slack request refused: it did not come through channels.slack.dispatch")
            return BoltResponse(status=401, body="")
        if req.body.get("type") == "url_verification":
            result: BoltResponse | None = await next()
            return result
        team_id = req.context.team_id
        enterprise_id = req.context.enterprise_id
        ours = team_id == self._identity.team_id or (
            self._identity.enterprise_id is not None and enterprise_id == self._identity.enterprise_id
        )
        if not ours:
            logger.warning("Slack request from workspace %s refused: not the configured workspace", team_id)
            return BoltResponse(
                status=200,
                body={"response_type": "ephemeral", "text": UNKNOWN_WORKSPACE_TEXT},
            )
        result = await next()
        return result


async def _timed(what: str, call: Awaitable[_T]) -> _T:
    started = time.monotonic()
    try:
        return await call
    finally:
        elapsed = time.monotonic() - started
        if elapsed > _SLOW_HANDLER_SECONDS:
            logger.warning("Slack %s handler took %.1fs; Slack gives up after 3s", what, elapsed)


def build_bolt_app(
    *,
    signing_secret: str,
    client: AsyncWebClient,
    handlers: SlackHandlers,
    identity: BotIdentity,
    command: str = SLASH_COMMAND,
) -> LooplineSlackApp:
    """A Bolt ``AsyncApp`` for one workspace with every listener Loopline subscribes to.

    Requests must go through :func:`dispatch` (it verifies the signature; the app refuses anything
    else with 401). ``client`` is the Web API client the handlers use (:func:`web_client`); Bolt only
    gets a token-less copy of its settings, and authorizes every request from ``identity`` and the
    client's token without calling ``auth.test``. Requests from other workspaces are answered 200 with
    :data:`UNKNOWN_WORKSPACE_TEXT` and reach no handler.

    Listeners: the slash command ``command`` (``/street``), global shortcut ``street_report``, message
    shortcut ``report_heard``, button ``add_detail``, modal ``street_report`` and the events
    ``app_mention`` and ``message``; everything else gets the deliberate :data:`UNHANDLED_STATUS`.
    """
    if not signing_secret or not signing_secret.strip():
        raise ValueError("signing_secret is required")
    if not identity.team_id:
        raise ValueError("identity.team_id is required")
    bolt_client = AsyncWebClient(
        token=None,
        base_url=client.base_url,
        timeout=client.timeout,
        logger=client.logger,
        retry_handlers=list(client.retry_handlers),
    )
    bolt_client.proxy = client.proxy
    app = LooplineSlackApp(
        name="loopline-slack",
        signing_secret=signing_secret,
        identity=identity,
        client=bolt_client,
        authorize=_StaticAuthorize(identity, client.token),
        before_authorize=_Gate(identity),
        process_before_response=True,
        raise_error_for_unhandled_request=True,
        # dispatch() verifies with the same SDK verifier before Bolt parses anything; Bolt's own check
        # would run twice and, on failure, log the request body (message text) at INFO.
        request_verification_enabled=False,
        # dispatch() answers ssl_check itself: Bolt's check misfires when SLACK_VERIFICATION_TOKEN is set.
        ssl_check_enabled=False,
    )
    if app.oauth_flow is not None:
        raise ValueError(
            "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set in the environment, which switches Bolt to "
            "the OAuth install flow; Loopline serves one workspace: unset them"
        )

    async def on_command(ack: AsyncAck, body: dict[str, Any]) -> None:
        parsed = _parse_command(body)
        if isinstance(parsed, QuickReport):
            await ack(dict(await _timed("quick_report", handlers.quick_report(parsed))))
            return
        answer = await _timed("street_command", handlers.street_command(parsed))
        await (ack(dict(answer)) if answer is not None else ack())

    async def on_global_shortcut(ack: AsyncAck, body: dict[str, Any]) -> None:
        user = _staff_from_interaction(body)
        trigger_id = _required_str(body, "trigger_id", "payload")
        await _timed(
            "open_report_modal", handlers.open_report_modal(user, trigger_id, None, "shortcut", None)
        )
        await ack()

    async def on_message_shortcut(ack: AsyncAck, body: dict[str, Any]) -> None:
        user = _staff_from_interaction(body)
        trigger_id = _required_str(body, "trigger_id", "payload")
        message = _obj(body.get("message")) or {}
        text = _clean(_str(message.get("text")) or "").strip()
        initial = ReportForm(heard=text) if text else None
        await _timed(
            "open_report_modal",
            handlers.open_report_modal(user, trigger_id, initial, "message_shortcut", None),
        )
        await ack()

    async def on_add_detail(ack: AsyncAck, body: dict[str, Any]) -> None:
        user = _staff_from_interaction(body)
        trigger_id = _required_str(body, "trigger_id", "payload")
        actions = body.get("actions")
        action = _obj(actions[0]) if isinstance(actions, list) and actions else None
        value = _str(action.get("value")) if action else None
        if value is None or not re.fullmatch(r"[0-9]{1,18}", value):
            raise BadRequest("add_detail button without a report id")
        await _timed(
            "open_report_modal",
            handlers.open_report_modal(user, trigger_id, None, "add_detail", int(value)),
        )
        await ack()

    async def on_view_submission(ack: AsyncAck, body: dict[str, Any]) -> None:
        submission = parse_view_submission(body)
        if submission.errors:
            await ack(view_errors(submission.errors))
            return
        answer = await _timed("submit_report", handlers.submit_report(submission))
        await (ack(dict(answer)) if answer is not None else ack())

    async def on_event(ack: AsyncAck, body: dict[str, Any], request: AsyncBoltRequest) -> None:
        event = _obj(body.get("event"))
        if event is None:
            raise BadRequest("event_callback without an event")
        if event.get("bot_id") or event.get("subtype") == "bot_message":
            await ack()  # a bot's message, maybe ours: never answer bots (no loops)
            return
        event_id = _required_str(body, "event_id", "body")
        await _timed("event", handlers.event(event_id, _retry_num(request), event))
        await ack()

    async def on_error(
        error: Exception, request: AsyncBoltRequest, response: BoltResponse | None
    ) -> BoltResponse | None:
        kind = _str(request.body.get("type")) or ("slash_command" if "command" in request.body else "?")
        if isinstance(error, BoltUnhandledRequestError):
            logger.info("Slack %s request with no listener: acknowledged", kind)
            return BoltResponse(status=UNHANDLED_STATUS, body="")
        if isinstance(error, BadRequest):
            logger.warning("Slack %s request refused as malformed: %s", kind, error)
            return BoltResponse(status=400, body="", headers={"x-slack-no-retry": "1"})
        # Type only: handler exceptions (database errors...) can carry report text in their message.
        logger.error("Slack %s handler failed with %s", kind, type(error).__name__)
        return None  # Bolt's 500: Slack shows an error, and retries events

    app.command(command)(on_command)
    app.global_shortcut(GLOBAL_SHORTCUT)(on_global_shortcut)
    app.message_shortcut(MESSAGE_SHORTCUT)(on_message_shortcut)
    app.block_action(ACTION_ADD_DETAIL)(on_add_detail)
    app.view(MODAL_CALLBACK_ID)(on_view_submission)
    app.event("app_mention")(on_event)
    app.event("message")(on_event)
    app.error(on_error)
    return app


def _shape_problem(body: Mapping[str, Any]) -> str | None:
    """Why a parsed body cannot be a Slack request Bolt can route safely, or None."""
    for name, kind in (
        ("type", str),
        ("team", (dict, str, type(None))),
        ("user", (dict, str, type(None))),
        ("view", dict),
        ("event", dict),
        ("message", dict),
        ("channel", (dict, str, type(None))),
        ("enterprise", (dict, str, type(None))),
        ("authorizations", list),
        ("actions", list),
    ):
        if name in body and not isinstance(body[name], kind):
            return f"{name} has the wrong type"
    for name in ("authorizations", "actions"):
        if name in body and not all(isinstance(item, dict) for item in body[name]):
            return f"{name} must hold objects"
    event = body.get("event")
    if isinstance(event, dict) and not isinstance(event.get("type", ""), str):
        return "event.type has the wrong type"
    return None


async def dispatch(app: AsyncApp, request: HttpRequest) -> tuple[int, dict[str, str], bytes]:
    """Answer one request Slack POSTed to ``/slack/events``: ``(status, headers, body)``.

    * 401, empty body: the signature or timestamp does not verify (checked on the raw bytes first).
    * 200, empty body: ``ssl_check=1``.
    * 400, empty body, ``X-Slack-No-Retry: 1``: signed but unparseable (a bad ``payload=`` field,
      JSON that is not an object, fields of the wrong type).
    * Otherwise Bolt's answer: the challenge for ``url_verification``, the handler's ack body,
      ``response_action`` errors for an invalid modal, :data:`UNKNOWN_WORKSPACE_TEXT`, 200 for anything
      unhandled, 500 if a handler raised.

    ``X-Slack-Retry-Num`` reaches :meth:`SlackHandlers.event` as ``retry_num``.
    """
    if not isinstance(app, LooplineSlackApp):
        raise TypeError("dispatch() needs the app from build_bolt_app()")
    if not verify(request, signing_secret=app.loopline_signing_secret):
        return 401, {"content-type": "text/plain; charset=utf-8"}, b""
    bad_request = (400, {"content-type": "text/plain; charset=utf-8", "x-slack-no-retry": "1"}, b"")
    try:
        text = request.body.decode("utf-8")
        bolt_request = AsyncBoltRequest(
            body=text,
            query=urlsplit(request.url).query or None,
            # Headers are not signed: drop Bolt's internal ones (x-slack-bolt-lazy-only would make Bolt
            # skip every listener of a replayed, genuinely signed request).
            headers={
                key.lower(): value
                for key, value in request.headers.items()
                if not key.lower().startswith("x-slack-bolt-")
            },
            context={_VERIFIED_KEY: _VERIFIED},
        )
    except Exception as error:  # json.loads, context extraction on odd shapes: all bad input
        logger.warning("signed Slack request could not be parsed (%s)", type(error).__name__)
        return bad_request
    body = bolt_request.body
    if not isinstance(body, dict):
        return bad_request
    problem = _shape_problem(body)
    if problem is not None:
        logger.warning("signed Slack request refused: %s", problem)
        return bad_request
    if body.get("ssl_check") == "1":
        return 200, {"content-type": "text/plain; charset=utf-8"}, b""
    try:
        response = await app.async_dispatch(bolt_request)
    except Exception as error:  # an error handler that failed: Bolt lets that one through
        logger.error("Slack request failed inside Bolt with %s", type(error).__name__)
        return 500, {"content-type": "text/plain; charset=utf-8"}, b""
    return response.status, response.first_headers_without_set_cookie(), response.body.encode("utf-8")


# -- Web API --------------------------------------------------------------------------------------------


def _retry_after_seconds(headers: Mapping[str, Any]) -> float | None:
    """``Retry-After`` in seconds (integer or decimal); None if absent or an HTTP date."""
    for key, value in headers.items():
        if key.lower() != "retry-after":
            continue
        raw = value[0] if isinstance(value, list) and value else value
        try:
            seconds = float(str(raw).strip())
        except ValueError:
            return None
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    return None


class _BoundedRateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """The SDK's 429 handler, but only for waits up to ``max_wait`` seconds (longer ones come back as
    ``ProviderUnavailable(retry_after=...)`` for the caller to schedule), and tolerant of a
    ``Retry-After`` that is not an integer (the SDK's own handler raises ``ValueError`` on one)."""

    def __init__(self, *, max_retry_count: int, max_wait: float) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: RetryRequest,
        response: RetryResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = _retry_after_seconds(response.headers)
        return (wait if wait is not None else 1.0) <= self.max_wait

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: RetryRequest,
        response: RetryResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        wait = _retry_after_seconds(response.headers) if response is not None else None
        state.next_attempt_requested = True
        await asyncio.sleep((wait if wait is not None else 1.0) + random.uniform(0.0, 0.1))
        state.increment_current_attempt()


class _SmallJitter(Jitter):
    """Up to half the interval again (the SDK's default adds up to a whole second)."""

    def recalculate(self, duration: float) -> float:
        return duration + random.uniform(0.0, duration / 2)


def web_client(
    token: str,
    *,
    base_url: str | None = None,
    timeout: float = 10.0,
    max_retry_after: float = 5.0,
) -> AsyncWebClient:
    """The SDK's ``AsyncWebClient`` for Loopline.

    * Retries: a 429 once or twice after ``Retry-After`` (if that is at most ``max_retry_after``
      seconds), a 500/503 twice with short backoff, a dropped connection once. No session is kept, so
      there is nothing to close.
    * ``timeout`` (seconds, per attempt) also bounds a hung API.
    * Proxies: none. slack_sdk would read ``HTTPS_PROXY``/``HTTP_PROXY`` and ignore ``NO_PROXY``.
    * ``base_url``: e.g. a local fake's ``http://127.0.0.1:PORT/api/``; default Slack's.
    """
    if not token or not token.strip():
        raise ValueError("a Slack bot token is required")
    if not timeout > 0:
        raise ValueError("timeout must be positive")
    if base_url is not None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("base_url must look like https://host/api/")
    client = AsyncWebClient(
        token=token,
        base_url=base_url or AsyncWebClient.BASE_URL,
        timeout=timeout,  # type: ignore[arg-type]  # used as aiohttp.ClientTimeout(total=...): float is fine
        retry_handlers=_retry_handlers(max_retry_after),
    )
    client.proxy = None  # the constructor copied HTTPS_PROXY & co. from the environment
    client.trust_env_in_session = False
    return client


def _retry_handlers(max_retry_after: float) -> list[AsyncRetryHandler]:
    return [
        AsyncConnectionErrorRetryHandler(max_retry_count=1),
        _BoundedRateLimitRetryHandler(max_retry_count=2, max_wait=max_retry_after),
        AsyncServerErrorRetryHandler(
            max_retry_count=2,
            interval_calculator=BackoffRetryIntervalCalculator(backoff_factor=0.25, jitter=_SmallJitter()),
        ),
    ]


# Slack error codes (``{"ok": false, "error": ...}``) by what Loopline must do about them.
_MISCONFIGURED_ERRORS: Final = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "not_allowed_token_type",
        "team_access_not_granted",
        "ekm_access_denied",
        "org_login_required",
        "team_not_found",
        "two_factor_setup_required",
    }
)
_UNAVAILABLE_ERRORS: Final = frozenset(
    {"ratelimited", "rate_limited", "fatal_error", "internal_error", "service_unavailable", "request_timeout"}
)


def classify_slack_error(error: SlackApiError, what: str) -> SendError:
    """Map a ``SlackApiError`` from ``what`` (e.g. "chat.postMessage") to Loopline's error tree.

    429 or ``ratelimited``: ``ProviderUnavailable`` with ``retry_after`` from ``Retry-After``; HTTP 5xx,
    an unreadable body or a Slack-side failure: ``ProviderUnavailable``; a token problem
    (``invalid_auth``, ``missing_scope``...): ``Misconfigured``; anything else (``channel_not_found``,
    ``not_in_channel``, ``expired_trigger_id``, ``invalid_arguments``...): ``Rejected``.
    ``provider_code`` is Slack's error string.
    """
    response = error.response
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    data = getattr(response, "data", None)
    code = _str(data.get("error")) if isinstance(data, dict) else None
    raw_headers = getattr(response, "headers", None)
    headers: Mapping[str, Any] = raw_headers if isinstance(raw_headers, Mapping) else {}
    said = f"Slack answered {what} with HTTP {status if status is not None else '?'}" + (
        f" and error {code}" if code else ""
    )
    if status == 429 or code in ("ratelimited", "rate_limited"):
        return ProviderUnavailable(
            f"{said}: rate limited", provider_code=code, retry_after=_retry_after_seconds(headers)
        )
    if isinstance(status, int) and status >= 500:
        return ProviderUnavailable(f"{said}: try again later", provider_code=code)
    if code is None:
        return ProviderUnavailable(f"{said}: unreadable answer, try again later")
    if code in _UNAVAILABLE_ERRORS:
        return ProviderUnavailable(f"{said}: try again later", provider_code=code)
    if code in _MISCONFIGURED_ERRORS:
        return Misconfigured(f"{said}: check the bot token and scopes", provider_code=code)
    return Rejected(f"{said}: refused", provider_code=code)


async def _call(what: str, call: Awaitable[_T]) -> _T:
    try:
        return await call
    except SlackApiError as error:
        raise classify_slack_error(error, what) from error
    except TimeoutError as error:
        raise ProviderUnavailable(f"Slack did not answer {what} in time") from error
    except (aiohttp.ClientError, OSError, json.JSONDecodeError) as error:
        raise ProviderUnavailable(f"cannot reach Slack for {what}: {type(error).__name__}") from error


def _result_str(response: Any, key: str, what: str) -> str:
    value = response.get(key) if hasattr(response, "get") else None
    if not isinstance(value, str) or not value:
        raise ProviderUnavailable(f"Slack answered {what} without {key}")
    return value


async def post_message(
    client: AsyncWebClient,
    channel: str,
    text: str,
    blocks: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """``chat.postMessage``; returns the message ``ts``. ``text`` is required (it is the notification
    and screen-reader text even when there are blocks). Raises a :class:`~channels.errors.SendError`."""
    if not text.strip():
        raise ValueError("a Slack message needs text, even with blocks")
    response = await _call(
        "chat.postMessage",
        client.chat_postMessage(
            channel=channel, text=text, blocks=[dict(b) for b in blocks] if blocks is not None else None
        ),
    )
    return _result_str(response, "ts", "chat.postMessage")


async def post_ephemeral(
    client: AsyncWebClient,
    channel: str,
    user: str,
    text: str,
    blocks: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """``chat.postEphemeral`` to ``user`` in ``channel``; returns ``message_ts``."""
    if not text.strip():
        raise ValueError("a Slack message needs text, even with blocks")
    response = await _call(
        "chat.postEphemeral",
        client.chat_postEphemeral(
            channel=channel,
            user=user,
            text=text,
            blocks=[dict(b) for b in blocks] if blocks is not None else None,
        ),
    )
    return _result_str(response, "message_ts", "chat.postEphemeral")


async def open_view(client: AsyncWebClient, trigger_id: str, view: Mapping[str, Any]) -> str:
    """``views.open``; returns the view id. A trigger older than 3 s (``expired_trigger_id``) or used
    twice (``exchanged_trigger_id``) is ``Rejected``: tell the user to try again."""
    response = await _call("views.open", client.views_open(trigger_id=trigger_id, view=dict(view)))
    view_data = response.get("view")
    if not isinstance(view_data, dict):
        raise ProviderUnavailable("Slack answered views.open without a view")
    return _result_str(view_data, "id", "views.open")


async def whoami(client: AsyncWebClient) -> BotIdentity:
    """``auth.test``: the workspace and bot behind the token, for :func:`build_bolt_app`. Call it at
    start-up: a bad token is ``Misconfigured`` here, loudly, instead of events dropped later."""
    response = await _call("auth.test", client.auth_test())
    return BotIdentity(
        team_id=_result_str(response, "team_id", "auth.test"),
        bot_user_id=_str(response.get("user_id")) or None,
        bot_id=_str(response.get("bot_id")) or None,
        enterprise_id=_str(response.get("enterprise_id")) or None,
    )


# -- manifest -------------------------------------------------------------------------------------------


def manifest(public_url: str, *, name: str = "Loopline", command: str = SLASH_COMMAND) -> dict[str, Any]:
    """A Slack app manifest (paste as JSON at api.slack.com/apps → Create from manifest).

    One request URL, ``{public_url}/slack/events``, for the slash command, interactivity and events;
    bot scopes :data:`BOT_SCOPES`; event ``app_mention``. ``should_escape`` is on, so mentions arrive as
    ``<@U123>`` markup that Loopline can strip instead of as people's names.
    """
    parts = urlsplit(public_url)
    if parts.scheme != "https" or not parts.netloc:
        raise ValueError("Slack needs an https:// public URL")
    if not 1 <= len(name) <= 35:
        raise ValueError("the app name must be 1-35 characters")
    url = public_url.rstrip("/") + EVENTS_PATH
    return {
        "display_information": {
            "name": name,
            "description": "Report what residents are saying on the street, in seconds.",
            "background_color": "#1d4f6e",
        },
        "features": {
            "bot_user": {"display_name": name, "always_online": False},
            "slash_commands": [
                {
                    "command": command,
                    "url": url,
                    "description": "Report what you heard, or see themes",
                    "usage_hint": "[what you heard] | mine | themes [7d|30d] [ward]",
                    "should_escape": True,
                }
            ],
            "shortcuts": [
                {
                    "name": "Street report",
                    "type": "global",
                    "callback_id": GLOBAL_SHORTCUT,
                    "description": "Record what residents are saying",
                },
                {
                    "name": "Report what was heard",
                    "type": "message",
                    "callback_id": MESSAGE_SHORTCUT,
                    "description": "Turn this message into a street report",
                },
            ],
        },
        "oauth_config": {"scopes": {"bot": list(BOT_SCOPES)}},
        "settings": {
            "event_subscriptions": {"request_url": url, "bot_events": list(BOT_EVENTS)},
            "interactivity": {"is_enabled": True, "request_url": url},
            "org_deploy_enabled": False,
            "socket_mode_enabled": False,
            "token_rotation_enabled": False,
        },
    }


# -- Socket Mode -----------------------------------------------------------------------------------------

SlackClient = AsyncWebClient
"""The Web API client type, named here so the wiring needs no import of slack_sdk."""


class SocketMode:
    """Slack over a WebSocket opened with the app-level token (``xapp-``), for councils without a public
    URL. Requests reach the same Bolt listeners; the WebSocket itself is the authentication."""

    def __init__(self, app: LooplineSlackApp, app_token: str) -> None:
        from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

        self._handler = AsyncSocketModeHandler(app, app_token)

    async def connect(self) -> None:
        await self._handler.connect_async()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        await self._handler.close_async()  # type: ignore[no-untyped-call]
