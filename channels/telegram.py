"""Telegram Bot API adapter.

Inbound: Telegram POSTs one JSON ``Update`` per request to the webhook, with the header
``X-Telegram-Bot-Api-Secret-Token`` set to the secret given to ``setWebhook``. :meth:`Telegram.verify`
compares it in constant time; :meth:`Telegram.parse_update` turns the raw JSON into an
:class:`~channels.base.InboundMessage` (the web layer stores the raw update keyed by ``update_id`` first).
Long polling (:meth:`Telegram.get_updates`) hands back each update's raw JSON bytes, so both paths store
and parse the same thing.

Outbound: python-telegram-bot's :class:`telegram.Bot` is the Bot API client (no ``Application``, no
``ConversationHandler``, no PTB persistence: survey state lives in Loopline's database). Its HTTPX
transport is wrapped so that

* every request has Loopline's timeouts, plus an overall ``asyncio.timeout`` around each call;
* a flood-control answer (``parameters.retry_after``) becomes :class:`ProviderUnavailable` with
  ``retry_after`` without PTB building a ``RetryAfter``: in PTB 22.x its constructor reads its own
  deprecated ``retry_after`` property and so emits a ``PTBDeprecationWarning`` on every 429;
* an unreadable answer is not logged (PTB's default parser logs the whole payload, message text included).

Failures come back as the :mod:`channels.errors` tree. The adapter spaces messages to one chat at least
``per_chat_interval`` seconds apart (Telegram's limit is about one message per second per chat; PTB's
``AIORateLimiter`` does not enforce it for private chats); the overall 30 messages/s is the sender's job.

Nothing in this module logs message text, phone numbers or the token. Note that third-party loggers
do: PTB's ``telegram.Bot`` logger prints request parameters (message text) and the API URL (which holds
the token) at DEBUG, and ``httpx`` logs every request URL (token included) at INFO. Keep both at
WARNING in production logging configuration.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import re
import unicodedata
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)
from telegram import error as tg
from telegram.request import HTTPXRequest

from channels.base import (
    Button,
    ButtonPress,
    HttpRequest,
    InboundKind,
    InboundMessage,
    OutboundMessage,
)
from channels.errors import (
    AddressInvalid,
    BadRequest,
    Misconfigured,
    ProviderUnavailable,
    RecipientOptedOut,
    Rejected,
    SendError,
)

__all__ = [
    "ALLOWED_UPDATES",
    "CONTACT_BUTTON_TEXT",
    "MAX_CALLBACK_DATA_BYTES",
    "MAX_TEXT_UNITS",
    "SECRET_HEADER",
    "Telegram",
    "decode_button",
    "encode_button",
    "split_text",
    "utf16_len",
]

_T = TypeVar("_T")

#: The update types Loopline asks Telegram for (``setWebhook`` / ``getUpdates`` ``allowed_updates``).
ALLOWED_UPDATES: Final = ("message", "edited_message", "callback_query", "my_chat_member")

#: Header Telegram sets on every webhook request when ``setWebhook`` had a ``secret_token``.
SECRET_HEADER: Final = "x-telegram-bot-api-secret-token"

#: Message text limit, counted here in UTF-16 code units. Telegram documents "1-4096 characters";
#: reports disagree on whether it counts code points or UTF-16 units (the unit of its entity offsets), so
#: parts are cut by the stricter measure and fit either way.
MAX_TEXT_UNITS: Final = 4096

#: ``callback_data`` is 1-64 bytes of UTF-8.
MAX_CALLBACK_DATA_BYTES: Final = 64

#: The label of the reply-keyboard button that shares the resident's own phone number.
CONTACT_BUTTON_TEXT: Final = "Share my phone number"

_API_ORIGIN: Final = "https://api.telegram.org"
_BUTTON_PREFIX: Final = "a"
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_CHAT_ID = re.compile(r"-?[0-9]{1,20}")
_DEEP_LINK_PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A bot command at the very start of the text, optionally addressed: "/start", "/start@LooplineBot".
_COMMAND = re.compile(r"/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{1,64}))?(?=\s|$)")
_LANGUAGE = re.compile(r"[a-z]{2,8}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SHORT_LABEL_CHARS: Final = 8  # labels this short go side by side (a 1-5 scale, Yes/No, Ydw/Na)
_MAX_PER_ROW: Final = 5
_MAX_NOTICE_CHARS: Final = 200  # answerCallbackQuery text limit
_POOL_SIZE: Final = 64
_SLOT_PRUNE_AT: Final = 4096  # forget finished per-chat spacing slots once this many chats are tracked

# Descriptions (lower-cased, "Bad Request: " removed by PTB) that say something about the recipient.
_OPTED_OUT: Final = ("blocked", "deactivated")
_ADDRESS_INVALID: Final = ("chat not found", "user not found", "peer_id_invalid", "chat_id is empty")
# Benign answers when acknowledging a press: the query or the message is gone, or already shows the answer.
_QUERY_GONE: Final = ("query is too old", "query id is invalid")
_EDIT_POINTLESS: Final = ("message is not modified", "message to edit not found", "message can't be edited")


# -- callback_data ----------------------------------------------------------------------------------------


def encode_button(question: str, value: str) -> str:
    """``callback_data`` for a button answering ``question`` with ``value``: ``"a|<question>|<value>"``.

    ``question`` may be empty (a press not tied to a question) but may not contain ``|``; ``value``
    must not be empty. Raises ``ValueError`` if the result would exceed 64 bytes of UTF-8 (Telegram's
    limit) or contain control characters.
    """
    if "|" in question:
        raise ValueError("a button's question id cannot contain '|'")
    if not value:
        raise ValueError("a button needs a value")
    data = f"{_BUTTON_PREFIX}|{question}|{value}"
    if _CONTROL.search(data):
        raise ValueError("button data cannot contain control characters")
    size = len(data.encode("utf-8"))
    if size > MAX_CALLBACK_DATA_BYTES:
        raise ValueError(
            f"button data would be {size} bytes; Telegram allows {MAX_CALLBACK_DATA_BYTES} "
            "(shorten the question id or the value)"
        )
    return data


def decode_button(data: str) -> tuple[str, str] | None:
    """``(question, value)`` from :func:`encode_button`'s output; None for anything else.

    ``callback_data`` comes from the client and can be forged, so this never raises: wrong prefix,
    missing parts, an empty value, control characters or more than 64 bytes all give None. A decoded
    pair still has to be checked against the resident's current question.
    """
    if not isinstance(data, str) or _CONTROL.search(data):
        return None
    try:
        if len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
            return None
    except UnicodeEncodeError:  # a lone surrogate
        return None
    prefix, sep, rest = data.partition("|")
    question, sep2, value = rest.partition("|")
    if prefix != _BUTTON_PREFIX or not sep or not sep2 or not value:
        return None
    return question, value


# -- text splitting ---------------------------------------------------------------------------------------


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units (characters beyond U+FFFF count twice)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _clean_outbound(text: str) -> str:
    """Join surrogate pairs written as two code points and replace lone surrogates and NUL."""
    joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return joined.replace("\x00", "")


def _glued_to_previous(ch: str) -> bool:
    """True if ``ch`` belongs to the character before it (combining mark, ZWJ, variation selector...)."""
    code = ord(ch)
    return (
        unicodedata.combining(ch) != 0
        or unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or code == 0x200D  # zero width joiner
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0xE0100 <= code <= 0xE01EF
        or 0x1F3FB <= code <= 0x1F3FF  # skin tone modifiers
        or 0xE0020 <= code <= 0xE007F  # tag characters (subdivision flags)
    )


def _is_regional_indicator(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _safe_cut(text: str, cut: int) -> int:
    """Move a hard cut back so it does not split a grapheme cluster (emoji sequence, flag, accent)."""
    floor = max(1, cut - 32)
    position = cut
    while position > floor and (_glued_to_previous(text[position]) or text[position - 1] == "\u200d"):
        position -= 1
    if position > floor and _is_regional_indicator(text[position]):
        run = 0
        while position - run - 1 >= 0 and _is_regional_indicator(text[position - run - 1]):
            run += 1
        if run % 2 == 1:  # we would separate the two halves of a flag
            position -= 1
    if position <= floor and cut - 32 >= 1:
        return cut  # an absurd run of combining marks: cut anyway, still on a code point
    return position


def _longest_prefix(text: str, limit: int) -> int:
    """The largest index ``i`` with ``utf16_len(text[:i]) <= limit``."""
    units = 0
    for index, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def split_text(text: str, limit: int = MAX_TEXT_UNITS) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` UTF-16 code units.

    A cut goes at the last newline in the second half of the allowed span, else at the last whitespace
    there, else (one long word) before the longest prefix that fits, moved back so that an emoji
    sequence, flag or accented letter stays whole. Whitespace at a cut is dropped; a cut never falls
    inside a character, so no part holds half a surrogate pair. First, a surrogate pair written as two
    code points is joined, a lone surrogate becomes U+FFFD and NUL is removed; text that then fits is
    the only part, otherwise unchanged.
    """
    if limit < 2:
        raise ValueError("limit must be at least 2")
    rest = _clean_outbound(text)
    parts: list[str] = []
    while (fits := _longest_prefix(rest, limit)) < len(rest):
        half = fits // 2
        cut = rest.rfind("\n", half, fits + 1)
        if cut <= 0:
            cut = next((i for i in range(fits, half, -1) if i < len(rest) and rest[i].isspace()), -1)
        if cut <= 0:
            cut = _safe_cut(rest, fits)
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        if head:
            parts.append(head)
    if rest or not parts:
        parts.append(rest)
    return parts


# -- reading updates --------------------------------------------------------------------------------------


def _obj(value: object) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _clean_text(value: str) -> str:
    """Remove NUL: PostgreSQL ``text`` rejects it."""
    return value.replace("\x00", "")


def _language(user: Mapping[str, Any] | None) -> str | None:
    """The primary subtag of the user's ``language_code``, lower-case ("en-GB" -> "en"), if sensible."""
    code = _str(user.get("language_code")) if user else None
    if not code:
        return None
    primary = re.split(r"[-_]", code.strip(), maxsplit=1)[0].lower()
    return primary if _LANGUAGE.fullmatch(primary) else None


def _chat(payload: Mapping[str, Any], where: str) -> tuple[int, str]:
    chat = _obj(payload.get("chat"))
    chat_id = _int(chat.get("id")) if chat else None
    if chat is None or chat_id is None:
        raise BadRequest(f"{where}.chat.id is missing or not an integer")
    return chat_id, _str(chat.get("type")) or ""


def _load_update(body: bytes) -> dict[str, Any]:
    try:
        update = json.loads(body)
    except (ValueError, RecursionError):  # includes invalid UTF-8
        raise BadRequest("body is not valid JSON") from None
    if not isinstance(update, dict):
        raise BadRequest("body is not a JSON object (a Telegram Update)")
    update_id = _int(update.get("update_id"))
    if update_id is None or update_id < 0:
        raise BadRequest("missing field update_id (or it is not a non-negative integer)")
    return update


def _own_contact_phone(contact: Mapping[str, Any], user: Mapping[str, Any] | None) -> str | None:
    """E.164 of a shared contact, only if it is the sender's own (``contact.user_id == from.id``)."""
    owner = _int(contact.get("user_id"))
    sender = _int(user.get("id")) if user else None
    if owner is None or sender is None or owner != sender:
        return None
    digits = re.sub(r"[^0-9]", "", _str(contact.get("phone_number")) or "")
    if not 7 <= len(digits) <= 15:
        return None
    return "+" + digits


# -- errors -----------------------------------------------------------------------------------------------


class _FloodControl(tg.TelegramError):
    """An answer with ``parameters.retry_after``, raised in place of PTB's warning ``RetryAfter``."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        super().__init__(f"Flood control exceeded. Retry in {seconds:g} seconds")
        self.seconds = seconds


def _retry_after(payload: bytes) -> float | None:
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    parameters = _obj(data.get("parameters")) if isinstance(data, dict) else None
    if parameters is None or parameters.get("migrate_to_chat_id"):
        return None  # let PTB raise ChatMigrated
    seconds = parameters.get("retry_after")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
        return None
    return float(seconds)


class _Request(HTTPXRequest):
    """PTB's HTTPX transport without the two behaviours Loopline cannot have (see the module docstring)."""

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        code, payload = await super().do_request(*args, **kwargs)
        if not 200 <= code <= 299:
            seconds = _retry_after(payload)
            if seconds is not None:
                raise _FloodControl(seconds)
        return code, payload

    @staticmethod
    def parse_json_payload(payload: bytes) -> dict[str, Any]:
        try:
            data = json.loads(payload.decode("utf-8", "replace"))
        except (ValueError, RecursionError):
            raise tg.TelegramError("Invalid server response") from None
        if not isinstance(data, dict):
            raise tg.TelegramError("Invalid server response")
        return data


class _Bot(Bot):
    """:class:`telegram.Bot` plus ``getUpdates`` returning the raw JSON (no ``Update.de_json``).

    The raw form is what Loopline stores, and an update PTB cannot model must not block the poll loop.
    """

    __slots__ = ()

    async def raw_updates(
        self,
        *,
        offset: int | None,
        poll_seconds: int,
        limit: int,
        allowed: Sequence[str],
        read_timeout: float,
    ) -> Any:
        data: dict[str, Any] = {
            "offset": offset,
            "timeout": poll_seconds,
            "limit": limit,
            "allowed_updates": list(allowed),
        }
        return await self._post("getUpdates", data, read_timeout=read_timeout)


def _description(exc: BaseException, token: str) -> str:
    text = str(exc) or type(exc).__name__
    return text.replace(token, "<token>")[:300] if token else text[:300]


def _token_rejected(what: str) -> Misconfigured:
    """401/404 from the API. Raise it outside any ``except`` block: PTB's ``InvalidToken`` from
    ``Bot.initialize`` quotes the token, and an implicit ``__context__`` would carry it into logs."""
    return Misconfigured(f"{what}: Telegram rejected the bot token (401/404)", provider_code="401")


def _classify(exc: BaseException, what: str, token: str) -> SendError:
    """Map a PTB exception (or a timeout) to Loopline's error tree. Order matters: BadRequest and
    TimedOut are NetworkError subclasses."""
    description = _description(exc, token)
    lowered = description.lower()
    if isinstance(exc, _FloodControl):
        return ProviderUnavailable(
            f"{what}: Telegram flood control, retry in {exc.seconds:g}s",
            provider_code="429",
            retry_after=exc.seconds,
        )
    if isinstance(exc, tg.RetryAfter):  # only reachable if something else raised it
        seconds = float(exc.__reduce__()[1][0])  # the property warns; __reduce__ gives the seconds
        return ProviderUnavailable(
            f"{what}: Telegram flood control, retry in {seconds:g}s", provider_code="429", retry_after=seconds
        )
    if isinstance(exc, tg.InvalidToken):
        return _token_rejected(what)
    if isinstance(exc, tg.Forbidden):
        if any(word in lowered for word in _OPTED_OUT):
            return RecipientOptedOut(f"{what}: {description}", provider_code="403")
        return Rejected(f"{what}: {description}", provider_code="403")
    if isinstance(exc, tg.ChatMigrated):
        return AddressInvalid(f"{what}: the group chat moved to a supergroup", provider_code="400")
    if isinstance(exc, tg.Conflict):
        return Misconfigured(
            f"{what}: {description} (a webhook is set, or another process is polling)", provider_code="409"
        )
    if isinstance(exc, tg.BadRequest):
        if any(phrase in lowered for phrase in _ADDRESS_INVALID):
            return AddressInvalid(f"{what}: {description}", provider_code="400")
        return Rejected(f"{what}: {description}", provider_code="400")
    if isinstance(exc, tg.TimedOut | TimeoutError):
        return ProviderUnavailable(f"{what}: Telegram did not answer in time")
    if isinstance(exc, tg.NetworkError):
        return ProviderUnavailable(f"{what}: cannot reach Telegram or it failed: {description}")
    return ProviderUnavailable(f"{what}: Telegram answered with an unreadable body")


# -- the adapter ------------------------------------------------------------------------------------------


def _button_rows(buttons: Sequence[Button]) -> list[list[Button]]:
    """Short labels side by side (at most 5 a row, rows balanced: 8 -> 4 + 4), long ones one a row."""
    if any(len(button.label) > _SHORT_LABEL_CHARS for button in buttons):
        return [[button] for button in buttons]
    rows = -(-len(buttons) // _MAX_PER_ROW)
    width = -(-len(buttons) // rows)
    return [list(buttons[start : start + width]) for start in range(0, len(buttons), width)]


def _api_chat_id(address: str) -> int | str:
    text = address.strip()
    return int(text) if _CHAT_ID.fullmatch(text) else text


class Telegram:
    """Telegram through the Bot API: webhook verification and parsing, sending, button acknowledgement,
    webhook management and long polling.

    Create it anywhere (no I/O, no event loop needed). The PTB ``Bot`` and its HTTP clients are built on
    :meth:`start`, or on first use, inside the running loop; :meth:`start` calls ``getMe`` so a wrong
    token fails there, loudly, as :class:`~channels.errors.Misconfigured`. Call :meth:`close` on shutdown.

    ``per_chat_interval`` (seconds, default 1.0) spaces messages to the same chat; 0 turns it off.
    """

    name = "telegram"

    def __init__(
        self,
        *,
        token: str,
        webhook_secret: str,
        api_base_url: str | None = None,
        timeout: float = 10.0,
        per_chat_interval: float = 1.0,
    ) -> None:
        if not token or not token.strip():
            raise ValueError("token is required")
        if not _SECRET_TOKEN.fullmatch(webhook_secret or ""):
            raise ValueError("webhook_secret must be 1-256 characters from A-Z a-z 0-9 _ - (Telegram's rule)")
        if not timeout > 0:
            raise ValueError("timeout must be positive")
        if per_chat_interval < 0:
            raise ValueError("per_chat_interval cannot be negative")
        if api_base_url is not None:
            base = urlsplit(api_base_url)
            if base.scheme not in ("http", "https") or not base.netloc:
                raise ValueError("api_base_url must look like http://host:port")
        self._token = token.strip()
        self._secret = webhook_secret.encode("utf-8")
        self._secret_text = webhook_secret
        self._origin = (api_base_url or _API_ORIGIN).rstrip("/")
        self._timeout = timeout
        self._deadline = 2 * timeout  # overall cap per API call: connect + write + read
        self._per_chat_interval = per_chat_interval
        self._bot: _Bot | None = None
        self._requests: tuple[_Request, ...] = ()
        self._started = False
        self._username: str | None = None
        self._start_lock = asyncio.Lock()
        self._next_slot: dict[str, float] = {}

    def __repr__(self) -> str:  # never show the token
        return f"<Telegram bot={self._token.split(':', 1)[0]} api={self._origin}>"

    # -- lifecycle --------------------------------------------------------------------------------------

    def _build_bot(self) -> _Bot:
        def request(pool: int) -> _Request:
            return _Request(
                connection_pool_size=pool,
                read_timeout=self._timeout,
                write_timeout=self._timeout,
                connect_timeout=self._timeout,
                pool_timeout=self._timeout,
                media_write_timeout=self._timeout,
            )

        polling, general = request(1), request(_POOL_SIZE)
        self._requests = (polling, general)
        return _Bot(
            self._token,
            base_url=f"{self._origin}/bot",
            base_file_url=f"{self._origin}/file/bot",
            request=general,
            get_updates_request=polling,
        )

    async def _ready(self) -> _Bot:
        if self._bot is not None and self._started:
            return self._bot
        async with self._start_lock:
            if self._bot is None:
                self._bot = self._build_bot()
            bot = self._bot
            if not self._started:
                rejected = False
                try:
                    async with asyncio.timeout(self._deadline):
                        await bot.initialize()
                    self._username = bot.username
                except tg.InvalidToken:
                    rejected = True  # raised below, outside this block: PTB's message holds the token
                except (tg.TelegramError, TimeoutError) as exc:
                    # keep the Bot and its HTTP clients: rebuilding them on every retry while Telegram is
                    # unreachable blocked the event loop for ~60 ms each time (certificate loading)
                    raise _classify(exc, "getMe", self._token) from exc
                if rejected:
                    await self._discard()
                    raise _token_rejected("getMe")
                self._started = True
            return bot

    async def start(self) -> None:
        """Build the Bot and call ``getMe``. Raises ``Misconfigured`` for a rejected token and
        ``ProviderUnavailable`` when Telegram cannot be reached."""
        await self._ready()

    async def _discard(self) -> None:
        self._bot, requests = None, self._requests
        self._requests = ()
        self._started = False
        for request in requests:
            await request.shutdown()  # a no-op for a closed client

    async def close(self) -> None:
        """Close the HTTP clients. Safe to call more than once, and before :meth:`start`."""
        bot = self._bot
        if bot is not None:
            await bot.shutdown()
        await self._discard()

    @property
    def username(self) -> str:
        """The bot's username (without ``@``) from ``getMe``; available after :meth:`start`."""
        if self._username is None:
            raise RuntimeError("Telegram.username is known only after start()")
        return self._username

    def deep_link(self, payload: str) -> str:
        """``https://t.me/<bot>?start=<payload>``: opens the bot and sends ``/start <payload>``."""
        if not _DEEP_LINK_PAYLOAD.fullmatch(payload):
            raise ValueError("a start payload is 1-64 characters from A-Z a-z 0-9 _ -")
        return f"https://t.me/{self.username}?start={payload}"

    # -- inbound ----------------------------------------------------------------------------------------

    def verify(self, request: HttpRequest) -> bool:
        """True if ``X-Telegram-Bot-Api-Secret-Token`` equals the webhook secret, byte for byte.

        Constant-time comparison; a missing or empty header gives False; no trimming, no case folding.
        """
        supplied = request.header(SECRET_HEADER)
        if not supplied:
            return False
        try:
            candidate = supplied.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return hmac.compare_digest(candidate, self._secret)

    def parse_update(self, body: bytes) -> InboundMessage | None:
        """Turn one Update's JSON into an :class:`InboundMessage`, or None if it carries nothing to store.

        Raises :class:`~channels.errors.BadRequest` for a body that is not JSON, not an object, has no
        integer ``update_id``, or is a known update type without the fields Telegram always sends
        (``message.chat.id``, ``callback_query.id``...). ``provider_id`` is ``str(update_id)`` and
        ``sender`` the chat id.

        * ``message`` with text: TEXT; a leading bot command sets ``command`` (lower-case, without the
          slash or ``@BotName``) and ``text`` becomes the rest ("/start parks-2026" -> "start",
          "parks-2026"). A command addressed to another bot ("/start@OtherBot") is plain text.
        * ``message`` with the sender's own ``contact``: CONTACT with ``contact_phone`` in E.164.
          Someone else's contact, photos, stickers, voice, documents, locations, service messages:
          UNSUPPORTED.
        * ``callback_query``: BUTTON; ``text`` is the value from :func:`decode_button` ("" if the data does
          not decode), ``press`` carries query id, message id and raw data; ``sender`` is the chat of the
          message with the button, else the presser's user id.
        * ``my_chat_member`` in a private chat: "kicked" -> BLOCKED, "member" -> UNBLOCKED.
        * ``edited_message``, ``channel_post`` and any other update with a chat: UNSUPPORTED, text "".
        * Messages from groups, supergroups and channels keep their kind with ``private=False``.
        * ``language`` is the primary subtag of ``from.language_code`` ("en-GB" -> "en").

        None (nothing to store) for: ``my_chat_member`` outside private chats or with another status
        (the bot added to or removed from a group), and update types without a chat (inline queries,
        polls, payments, types Telegram adds later). Never raises for a well-formed update of an
        unknown type.
        """
        update = _load_update(body)
        provider_id = str(update["update_id"])
        if "message" in update:
            return self._from_message(provider_id, update["message"])
        if "callback_query" in update:
            return self._from_callback(provider_id, update["callback_query"])
        if "my_chat_member" in update:
            return self._from_membership(provider_id, update["my_chat_member"])
        return self._from_other(provider_id, update)

    def _inbound(self, provider_id: str, sender: object, **fields: Any) -> InboundMessage:
        return InboundMessage(channel=self.name, sender=str(sender), provider_id=provider_id, **fields)

    def _from_message(self, provider_id: str, value: object) -> InboundMessage:
        message = _obj(value)
        if message is None:
            raise BadRequest("message is not an object")
        chat_id, chat_type = _chat(message, "message")
        user = _obj(message.get("from"))
        common: dict[str, Any] = {"language": _language(user), "private": chat_type == "private"}
        text = _str(message.get("text"))
        if text is not None:
            command, text = self._command(_clean_text(text))
            return self._inbound(provider_id, chat_id, text=text, command=command, **common)
        contact = _obj(message.get("contact"))
        phone = _own_contact_phone(contact, user) if contact is not None else None
        if phone is not None:
            return self._inbound(
                provider_id, chat_id, text="", kind=InboundKind.CONTACT, contact_phone=phone, **common
            )
        return self._inbound(provider_id, chat_id, text="", kind=InboundKind.UNSUPPORTED, **common)

    def _command(self, text: str) -> tuple[str | None, str]:
        match = _COMMAND.match(text)
        if match is None:
            return None, text
        addressed_to = match.group(2)
        if addressed_to and self._username and addressed_to.lower() != self._username.lower():
            return None, text  # "/start@SomeOtherBot" in a group: not for us
        return match.group(1).lower(), text[match.end() :].strip()

    def _from_callback(self, provider_id: str, value: object) -> InboundMessage:
        query = _obj(value)
        query_id = _str(query.get("id")) if query else None
        if query is None or not query_id:
            raise BadRequest("callback_query.id is missing")
        user = _obj(query.get("from"))
        message = _obj(query.get("message"))
        if message is not None:
            chat_id, chat_type = _chat(message, "callback_query.message")
            sender: int = chat_id
            message_id = _int(message.get("message_id"))
            private = chat_type == "private"
        else:  # a button on an inline-mode message: no chat, only the user
            user_id = _int(user.get("id")) if user else None
            if user_id is None:
                raise BadRequest("callback_query has neither message.chat.id nor from.id")
            sender, message_id, private = user_id, None, False
        data = _str(query.get("data")) or ""
        decoded = decode_button(data)
        return self._inbound(
            provider_id,
            sender,
            text=decoded[1] if decoded else "",
            kind=InboundKind.BUTTON,
            press=ButtonPress(query_id=query_id, message_id=message_id, data=data),
            language=_language(user),
            private=private,
        )

    def _from_membership(self, provider_id: str, value: object) -> InboundMessage | None:
        member = _obj(value)
        if member is None:
            raise BadRequest("my_chat_member is not an object")
        chat_id, chat_type = _chat(member, "my_chat_member")
        if chat_type != "private":
            return None
        new = _obj(member.get("new_chat_member"))
        status = _str(new.get("status")) if new else None
        kinds = {"kicked": InboundKind.BLOCKED, "member": InboundKind.UNBLOCKED}
        if status not in kinds:
            return None
        return self._inbound(
            provider_id, chat_id, text="", kind=kinds[status], language=_language(_obj(member.get("from")))
        )

    def _from_other(self, provider_id: str, update: Mapping[str, Any]) -> InboundMessage | None:
        for key, value in update.items():
            payload = _obj(value)
            if key == "update_id" or payload is None:
                continue
            chat = _obj(payload.get("chat"))
            chat_id = _int(chat.get("id")) if chat else None
            if chat is None or chat_id is None:
                return None
            return self._inbound(
                provider_id,
                chat_id,
                text="",
                kind=InboundKind.UNSUPPORTED,
                language=_language(_obj(payload.get("from"))),
                private=chat.get("type") == "private",
            )
        return None

    # -- outbound ---------------------------------------------------------------------------------------

    async def _call(self, what: str, call: Callable[[], Awaitable[_T]], *, extra_time: float = 0.0) -> _T:
        """Run one Bot API call under the overall deadline and map every failure to a SendError."""
        try:
            async with asyncio.timeout(self._deadline + extra_time):
                return await call()
        except tg.InvalidToken:
            pass  # raised below, outside this block, so that no exception chain carries PTB's message
        except (tg.TelegramError, TimeoutError) as exc:
            raise _classify(exc, what, self._token) from exc
        except (KeyError, TypeError, AttributeError) as exc:  # a 2xx whose JSON has the wrong shape
            raise ProviderUnavailable(f"{what}: Telegram answered with an unreadable body") from exc
        raise _token_rejected(what)

    async def _call_tolerating(
        self, what: str, call: Callable[[], Awaitable[object]], benign: Sequence[str]
    ) -> None:
        """Like :meth:`_call`, but a 400 whose description contains one of ``benign`` is not an error."""
        try:
            await self._call(what, call)
        except SendError as error:
            cause = error.__cause__
            if isinstance(cause, tg.BadRequest) and any(b in str(cause).lower() for b in benign):
                return
            raise

    async def _wait_turn(self, chat: str) -> None:
        """Reserve the next send slot for ``chat`` and sleep until it comes (no lock needed: the
        reservation happens before the first await)."""
        if self._per_chat_interval <= 0:
            return
        now = asyncio.get_running_loop().time()
        slot = max(now, self._next_slot.get(chat, now))
        self._next_slot[chat] = slot + self._per_chat_interval
        if len(self._next_slot) > _SLOT_PRUNE_AT:
            self._next_slot = {key: due for key, due in self._next_slot.items() if due > now}
        if slot > now:
            await asyncio.sleep(slot - now)

    def _hold_chat(self, chat: str, seconds: float) -> None:
        """After a flood-control answer, keep this chat's next slot at least ``seconds`` away."""
        due = asyncio.get_running_loop().time() + seconds
        self._next_slot[chat] = max(self._next_slot.get(chat, 0.0), due)

    @staticmethod
    def _markup(message: OutboundMessage) -> InlineKeyboardMarkup | ReplyKeyboardMarkup | None:
        if message.buttons and message.ask_for_contact:
            raise Rejected("a Telegram message cannot carry both answer buttons and a contact request")
        if message.ask_for_contact:
            return ReplyKeyboardMarkup(
                [[KeyboardButton(CONTACT_BUTTON_TEXT, request_contact=True)]],
                one_time_keyboard=True,
                resize_keyboard=True,
            )
        if not message.buttons:
            return None
        answers = [button for button in message.buttons if button.url is None]
        links = [button for button in message.buttons if button.url is not None]
        for button in message.buttons:
            size = len(button.value.encode("utf-8", "replace"))
            if not button.label.strip():
                raise Rejected("a button has an empty label")
            if button.url is None and not 1 <= size <= MAX_CALLBACK_DATA_BYTES:
                raise Rejected(f"button data is {size} bytes; Telegram allows 1-{MAX_CALLBACK_DATA_BYTES}")
        rows = [
            [InlineKeyboardButton(button.label, callback_data=button.value) for button in row]
            for row in _button_rows(answers)
        ]
        rows += [[InlineKeyboardButton(button.label, url=button.url)] for button in links]
        return InlineKeyboardMarkup(rows)

    async def send(self, message: OutboundMessage) -> str:
        """Send ``message`` and return ``"<chat id>:<message id>"`` of its last part.

        Text over :data:`MAX_TEXT_UNITS` goes as several messages (see :func:`split_text`); buttons, or the
        "Share my phone number" keyboard, ride on the last part. Every part waits for this chat's
        send slot. Raises a :class:`~channels.errors.SendError` subclass; only ``ProviderUnavailable`` is
        retryable. If a later part fails, earlier parts were delivered: a retry repeats them.
        """
        markup = self._markup(message)
        parts = split_text(message.text)
        chat = message.to.strip()
        chat_id = _api_chat_id(chat)
        bot = await self._ready()
        sent: Message | None = None
        for index, part in enumerate(parts):
            await self._wait_turn(chat)
            call = functools.partial(
                bot.send_message,
                chat_id=chat_id,
                text=part,
                reply_markup=markup if index == len(parts) - 1 else None,
            )
            try:
                sent = await self._call("sendMessage", call)
            except ProviderUnavailable as error:
                if error.retry_after:
                    self._hold_chat(chat, error.retry_after)
                raise
        assert sent is not None  # split_text returns at least one part
        return f"{sent.chat.id}:{sent.message_id}"

    async def acknowledge(
        self,
        press: ButtonPress,
        *,
        chat_id: str,
        chosen: str | None,
        notice: str | None = None,
        original_text: str | None = None,
    ) -> None:
        """Answer a button press (stops the client's spinner), then mark the question as answered.

        ``notice`` (at most 200 characters are sent) is shown as a toast. With ``chosen`` and a message
        id, the question message gets "✓ <chosen>" appended to ``original_text`` (the text that was sent;
        if it was split, the last part is used) and its buttons removed; without ``original_text`` only
        the buttons are removed. A press that is too old to answer, a message that is gone or already
        shows the answer are not errors; other failures raise like :meth:`send`.
        """
        bot = await self._ready()
        answer = functools.partial(
            bot.answer_callback_query,
            press.query_id,
            text=notice[:_MAX_NOTICE_CHARS] if notice else None,
        )
        await self._call_tolerating("answerCallbackQuery", answer, _QUERY_GONE)
        if chosen is None or press.message_id is None:
            return
        target = _api_chat_id(chat_id)
        if original_text is not None:
            edited = f"{split_text(original_text)[-1]}\n\n✓ {chosen}"
            if utf16_len(edited) <= MAX_TEXT_UNITS:
                # Without reply_markup, editMessageText also removes the inline keyboard.
                edit = functools.partial(
                    bot.edit_message_text, edited, chat_id=target, message_id=press.message_id
                )
                await self._call_tolerating("editMessageText", edit, _EDIT_POINTLESS)
                return
        strip = functools.partial(bot.edit_message_reply_markup, chat_id=target, message_id=press.message_id)
        await self._call_tolerating("editMessageReplyMarkup", strip, _EDIT_POINTLESS)

    # -- webhook and polling ----------------------------------------------------------------------------

    async def set_webhook(self, url: str, *, allowed_updates: Sequence[str]) -> None:
        """Register ``url`` (HTTPS, port 443/80/88/8443) with our secret token and ``allowed_updates``."""
        bot = await self._ready()
        call = functools.partial(
            bot.set_webhook, url, secret_token=self._secret_text, allowed_updates=list(allowed_updates)
        )
        if not await self._call("setWebhook", call):
            raise Rejected("setWebhook: Telegram answered false")

    async def delete_webhook(self) -> None:
        """Remove the webhook (pending updates are kept), e.g. before long polling."""
        bot = await self._ready()
        await self._call("deleteWebhook", functools.partial(bot.delete_webhook, drop_pending_updates=False))

    async def webhook_info(self) -> dict[str, object]:
        """``url``, ``pending_update_count``, ``last_error_date`` (aware datetime or None),
        ``last_error_message`` and ``allowed_updates``: for operations, to spot a failing webhook."""
        bot = await self._ready()
        info = await self._call("getWebhookInfo", bot.get_webhook_info)
        return {
            "url": info.url,
            "pending_update_count": info.pending_update_count,
            "last_error_date": info.last_error_date,
            "last_error_message": info.last_error_message,
            "allowed_updates": tuple(info.allowed_updates),
        }

    async def get_updates(
        self,
        *,
        offset: int | None,
        timeout: int,  # noqa: ASYNC109  # Telegram's long-poll parameter, not a client timeout
    ) -> list[tuple[int, bytes]]:
        """Long-poll for up to ``timeout`` seconds; return ``(update_id, raw JSON bytes)`` pairs.

        Pass ``offset`` = last stored ``update_id`` + 1 to confirm everything before it; advance it only
        after the updates are stored. The bytes are the update as Telegram sent it (re-serialised,
        ASCII-only JSON) and go straight into :meth:`parse_update`. Items without an integer
        ``update_id`` are skipped. Fails with ``Misconfigured`` while a webhook is set.
        """
        if timeout < 0:
            raise ValueError("timeout cannot be negative")
        bot = await self._ready()
        call = functools.partial(
            bot.raw_updates,
            offset=offset,
            poll_seconds=timeout,
            limit=100,
            allowed=ALLOWED_UPDATES,
            read_timeout=self._timeout + timeout,
        )
        result = await self._call("getUpdates", call, extra_time=timeout)
        if not isinstance(result, list):
            raise ProviderUnavailable("getUpdates: Telegram answered with an unreadable body")
        updates: list[tuple[int, bytes]] = []
        for item in result:
            update_id = _int(item.get("update_id")) if isinstance(item, dict) else None
            if update_id is not None:
                updates.append((update_id, json.dumps(item, separators=(",", ":")).encode("ascii")))
        return updates
