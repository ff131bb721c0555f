"""A faithful fake of the Telegram Bot API, plus helpers that play Telegram's webhook deliveries.

Run python-telegram-bot's real ``Bot`` against it (``Telegram(api_base_url=fake.base_url, ...)``)::

    async with FakeTelegram() as fake:
        fake.faults.append(Fault.retry_after(3))                   # the next request gets a 429
        fake.faults.append(Fault.blocked().on("sendMessage"))      # the next sendMessage gets a 403
        fake.faults_for["900000001"] = [Fault.chat_not_found()]   # only requests for this chat_id
        fake.always = Fault.server_error()                         # outage until set back to None
        fake.push_update(update_text(900000001, "hello"))          # for getUpdates

What it mimics (Bot API 9.x as python-telegram-bot 22.8 speaks it):

* ``/bot<token>/<method>``, GET or POST; parameters from the query string and from a form-encoded
  (PTB: non-string values JSON-encoded), multipart or JSON body. Method names are case-insensitive.
* Token: malformed -> 404 ``Not Found``; well-formed but not ours -> 401 ``Unauthorized`` (both
  are PTB ``InvalidToken``).
* Unknown method -> 404 ``Not Found``, as real Telegram answers. PTB reads a 404 as a bad token, so an
  unimplemented method looks like ``InvalidToken``; such calls are listed in :attr:`unknown_methods`
  so a test can tell the two apart.
* Implemented: getMe, sendMessage, editMessageText, editMessageReplyMarkup, answerCallbackQuery,
  setWebhook, deleteWebhook, getWebhookInfo, getUpdates (long poll with offset/limit/timeout,
  409 while a webhook is set or when a newer poll takes over).
* Validation as Telegram does it: empty text -> 400 "message text is empty"; over 4096 characters
  (code points: a live probe found Telegram accepts 4096 astral characters) -> 400 "message is too
  long"; callback_data outside 1-64 bytes -> 400 "BUTTON_DATA_INVALID"; unparseable reply_markup;
  a chat_id that is not an integer -> 400 "chat not found"; editing an unknown message -> 400
  "message to edit not found"; an edit that changes nothing -> 400 "message is not modified";
  answering a callback query twice -> 400 "query is too old ..."; setWebhook with a non-HTTPS URL, a
  port other than 80/88/443/8443 or a bad secret token -> 400.
* Success: ``{"ok": true, "result": ...}``; errors ``{"ok": false, "error_code", "description",
  "parameters"?}``. ``editMessageText`` without ``reply_markup`` removes the inline keyboard, as Telegram
  does. Returned messages carry ``reply_markup`` only for inline keyboards.

Recorded: :attr:`FakeTelegram.requests` (every call), :attr:`FakeTelegram.sent` (accepted
sendMessage calls: chat_id, text, reply_markup as parsed JSON, message_id, monotonic ``at``),
:attr:`FakeTelegram.edits`, :attr:`FakeTelegram.callback_answers`; the current state of each message in
:meth:`FakeTelegram.message`.

Fault precedence: :attr:`FakeTelegram.always`, then :attr:`FakeTelegram.faults_for` for the request's
``chat_id``, then :attr:`FakeTelegram.faults`; a fault made with ``.on(method)`` only matches that method.
Faults answer before the token check.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from tests.fakes.server import FakeServer

DEFAULT_TOKEN = "5123456789:AAHfake-Loopline_token-0123456789abcdef"
BOT_USERNAME = "LooplineTestBot"
HANG_SECONDS = 3600.0  # "far longer than any client timeout"; ends early when the server stops
MAX_TEXT_CHARS = 4096
MAX_CALLBACK_DATA_BYTES = 64
WEBHOOK_PORTS = frozenset({80, 88, 443, 8443})
#: What Telegram sends when allowed_updates was never set (or set to []).
DEFAULT_UPDATE_TYPES_EXCLUDED = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

_TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{30,}")
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_INTEGER = re.compile(r"-?[0-9]{1,20}")

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"


def error_body(code: int, description: str, parameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Telegram's error object."""
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = dict(parameters)
    return body


@dataclass(frozen=True, slots=True)
class Fault:
    """A canned answer the fake gives instead of processing a request."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    hangs: bool = False  # wait HANG_SECONDS (or until the server stops), then answer 502
    drops: bool = False  # close the connection without answering
    method: str | None = None  # only for this Bot API method (case-insensitive); None: any

    def on(self, method: str) -> Fault:
        """The same fault, but only for requests to ``method`` (e.g. "sendMessage")."""
        return replace(self, method=method)

    def matches(self, method: str) -> bool:
        return self.method is None or self.method.lower() == method.lower()

    @classmethod
    def error(cls, code: int, description: str, parameters: Mapping[str, Any] | None = None) -> Fault:
        return cls(status=code, body=json.dumps(error_body(code, description, parameters)).encode())

    @classmethod
    def retry_after(cls, seconds: int) -> Fault:
        """429 flood control; Telegram sends ``retry_after`` as integer seconds."""
        return cls.error(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})

    @classmethod
    def blocked(cls) -> Fault:
        return cls.error(403, "Forbidden: bot was blocked by the user")

    @classmethod
    def deactivated(cls) -> Fault:
        return cls.error(403, "Forbidden: user is deactivated")

    @classmethod
    def cannot_initiate(cls) -> Fault:
        return cls.error(403, "Forbidden: bot can't initiate conversation with a user")

    @classmethod
    def kicked_from_group(cls) -> Fault:
        return cls.error(403, "Forbidden: bot was kicked from the group chat")

    @classmethod
    def chat_not_found(cls) -> Fault:
        return cls.error(400, "Bad Request: chat not found")

    @classmethod
    def too_long(cls) -> Fault:
        return cls.error(400, "Bad Request: message is too long")

    @classmethod
    def not_modified(cls) -> Fault:
        return cls.error(400, NOT_MODIFIED)

    @classmethod
    def query_too_old(cls) -> Fault:
        return cls.error(400, QUERY_TOO_OLD)

    @classmethod
    def migrated(cls, new_chat_id: int) -> Fault:
        return cls.error(
            400,
            "Bad Request: group chat was upgraded to a supergroup chat",
            {"migrate_to_chat_id": new_chat_id},
        )

    @classmethod
    def unauthorized(cls) -> Fault:
        return cls.error(401, "Unauthorized")

    @classmethod
    def server_error(cls, status: int = 502) -> Fault:
        return cls.error(status, "Bad Gateway" if status == 502 else "Internal Server Error")

    @classmethod
    def html(cls, status: int = 502) -> Fault:
        """The nginx error page a proxy in front of the API sends during an outage."""
        page = (
            f"<html>\r\n<head><title>{status} Bad Gateway</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n"
        )
        return cls(status=status, body=page.encode(), content_type="text/html")

    @classmethod
    def invalid_json(cls) -> Fault:
        """A 200 whose body is cut off mid-JSON."""
        return cls(status=200, body=b'{"ok":true,"result":{"message_id":')

    @classmethod
    def hang(cls) -> Fault:
        """Never answer within any client timeout; released (with a 502) when the server stops."""
        return cls(status=502, hangs=True)

    @classmethod
    def disconnect(cls) -> Fault:
        """Read the request, then drop the connection without a response."""
        return cls(status=0, drops=True)


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """One request as the fake received it."""

    method: str  # Bot API method as written in the URL
    http_method: str
    params: Mapping[str, Any]  # decoded: JSON-encoded form values parsed
    token_ok: bool
    answered: int  # HTTP status sent back; 0 if the connection was dropped


class ApiError(Exception):
    """Raised by a method handler: answered as Telegram's error object."""

    def __init__(self, code: int, description: str, parameters: Mapping[str, Any] | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


# -- parameter decoding -----------------------------------------------------------------------------------

# Fields PTB JSON-encodes in a form body (everything that is not a plain string).
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "allowed_updates",
        "entities",
        "link_preview_options",
        "reply_parameters",
        "caption_entities",
    }
)


def _decode_value(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if name in _JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            if name == "reply_markup":
                raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object") from None
            raise ApiError(400, f"Bad Request: can't parse {name} JSON object") from None
    return value


def _int_param(params: Mapping[str, Any], name: str, *, required: bool = False) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise ApiError(400, f"Bad Request: {name} is empty")
        return None
    if isinstance(value, bool):
        raise ApiError(400, f"Bad Request: invalid {name} specified")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    raise ApiError(400, f"Bad Request: invalid {name} specified")


def _bool_param(params: Mapping[str, Any], name: str) -> bool:
    value = params.get(name)
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() in ("true", "1")


def _chat_param(params: Mapping[str, Any]) -> int:
    value = params.get("chat_id")
    if value is None or value == "":
        raise ApiError(400, "Bad Request: chat_id is empty")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    raise ApiError(400, "Bad Request: chat not found")  # "@username" of a chat we do not know


def _check_markup(markup: Any) -> dict[str, Any] | None:
    """Validate reply_markup like Telegram; return it parsed (None if absent)."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise ApiError(400, 'Bad Request: can\'t parse inline keyboard button: field "inline_keyboard"')
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                    raise ApiError(
                        400, "Bad Request: can't parse inline keyboard button: Text must be a String"
                    )
                if not button["text"].strip():
                    raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                if data is not None and (
                    not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES
                ):
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                if data is None and not any(k in button for k in ("url", "login_url", "switch_inline_query")):
                    raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
        return markup
    if "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not rows or not all(isinstance(row, list) for row in rows):
            raise ApiError(400, "Bad Request: keyboard must be non-empty")
        for row in rows:
            for button in row:
                text = (
                    button
                    if isinstance(button, str)
                    else button.get("text")
                    if isinstance(button, dict)
                    else None
                )
                if not isinstance(text, str) or not text.strip():
                    raise ApiError(400, "Bad Request: can't parse keyboard button: Text must be a String")
        return markup
    if markup.get("remove_keyboard") is True or markup.get("force_reply") is True:
        return markup
    raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")


def _chat_object(chat_id: int) -> dict[str, Any]:
    if chat_id > 0:
        return {"id": chat_id, "first_name": "Resident", "type": "private"}
    kind = "supergroup" if str(chat_id).startswith("-100") else "group"
    return {"id": chat_id, "title": "Neighbourhood group", "type": kind}


def _update_type(update: Mapping[str, Any]) -> str:
    return next((key for key in update if key != "update_id"), "")


# -- the server ---------------------------------------------------------------------------------------------


class FakeTelegram(FakeServer):
    """A local Telegram Bot API on 127.0.0.1 and a random port."""

    name = "FakeTelegram"

    def __init__(self, token: str = DEFAULT_TOKEN, *, username: str = BOT_USERNAME) -> None:
        self.token = token
        self.username = username
        self.bot_id = int(token.split(":", 1)[0])
        self.requests: list[SeenRequest] = []
        self.sent: list[dict[str, Any]] = []
        self.edits: list[dict[str, Any]] = []
        self.callback_answers: list[dict[str, Any]] = []
        self.unknown_methods: list[str] = []
        self.faults: deque[Fault] = deque()
        self.faults_for: dict[str, list[Fault]] = {}
        self.always: Fault | None = None
        self.webhook: dict[str, Any] | None = None  # url, secret_token, allowed_updates, max_connections
        self.last_error: tuple[int, str] | None = None  # (unix date, message) for getWebhookInfo
        self.allowed_updates: list[str] | None = None  # last setting from setWebhook / getUpdates
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._next_message_id: dict[int, int] = {}
        self._answered_queries: set[str] = set()
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 600_000_001
        self._changed = asyncio.Event()
        self._poll_generation = 0
        self._methods: dict[str, Callable[[Mapping[str, Any]], Awaitable[Any]]] = {
            "getme": self._get_me,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "answercallbackquery": self._answer_callback_query,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "getupdates": self._get_updates,
        }
        super().__init__()

    # -- lifecycle -------------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        self._changed = asyncio.Event()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._not_found)

    async def stop(self) -> None:
        self._changed.set()  # release long polls too
        await super().stop()

    def reset(self) -> None:
        """Forget recorded traffic and pending faults (messages, webhook and updates stay)."""
        self.requests.clear()
        self.sent.clear()
        self.edits.clear()
        self.callback_answers.clear()
        self.unknown_methods.clear()
        self.faults.clear()
        self.faults_for.clear()
        self.always = None

    # -- state a test can read or set ---------------------------------------------------------------------

    def message(self, chat_id: int | str, message_id: int) -> dict[str, Any] | None:
        """The current state of a message the bot sent (text and reply_markup after any edits)."""
        return self._messages.get((int(chat_id), message_id))

    def sent_to(self, chat_id: int | str) -> list[dict[str, Any]]:
        return [entry for entry in self.sent if entry["chat_id"] == int(chat_id)]

    def calls(self, method: str) -> list[SeenRequest]:
        return [r for r in self.requests if r.method.lower() == method.lower()]

    def push_update(self, update: Mapping[str, Any]) -> dict[str, Any]:
        """Queue an Update for getUpdates; an ``update_id`` is assigned (sequentially) if missing."""
        queued = dict(update)
        if not isinstance(queued.get("update_id"), int):
            queued["update_id"] = self._next_update_id
        self._next_update_id = max(self._next_update_id, queued["update_id"] + 1)
        self._updates.append(queued)
        self._wake()
        return queued

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        return list(self._updates)

    def set_webhook_error(self, message: str, *, date: int | None = None) -> None:
        """What getWebhookInfo reports as the last delivery error (e.g. "Wrong response from the
        webhook: 500 Internal Server Error")."""
        self.last_error = (date if date is not None else int(time.time()), message)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- HTTP -----------------------------------------------------------------------------------------------

    @staticmethod
    def _json(status: int, payload: Any) -> web.Response:
        return web.Response(status=status, body=json.dumps(payload).encode(), content_type="application/json")

    async def _params(self, request: web.Request) -> dict[str, Any]:
        raw: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            content_type = request.content_type
            if content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise ApiError(400, "Bad Request: can't parse JSON") from None
                if not isinstance(body, dict):
                    raise ApiError(400, "Bad Request: JSON body must be an object")
                raw.update(body)
            else:
                posted = await request.post()
                for key, value in posted.items():
                    raw[key] = value if isinstance(value, str) else str(value)
        return {name: _decode_value(name, value) for name, value in raw.items()}

    def _next_fault(self, method: str, chat: str | None) -> Fault | None:
        if self.always is not None and self.always.matches(method):
            return self.always
        if chat is not None:
            queue = self.faults_for.get(chat)
            for index, fault in enumerate(queue or ()):
                if fault.matches(method):
                    assert queue is not None
                    return queue.pop(index)
        for fault in self.faults:
            if fault.matches(method):
                self.faults.remove(fault)
                return fault
        return None

    async def _answer_fault(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        if fault.drops:
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=204)  # aiohttp notices the closed transport and drops it quietly
        if fault.hangs:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=HANG_SECONDS)
        return web.Response(
            status=fault.status, body=fault.body, headers={"Content-Type": fault.content_type}
        )

    def _record(self, request: web.Request, method: str, params: Mapping[str, Any], answered: int) -> None:
        token = request.match_info.get("token", "")
        self.requests.append(
            SeenRequest(
                method=method,
                http_method=request.method,
                params=dict(params),
                token_ok=token == self.token,
                answered=answered,
            )
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        try:
            params = await self._params(request)
        except ApiError as error:
            self._record(request, method, {}, error.code)
            return self._json(error.code, error_body(error.code, error.description))
        chat = params.get("chat_id")
        fault = self._next_fault(method, str(chat) if chat is not None else None)
        if fault is not None:
            self._record(request, method, params, fault.status)
            return await self._answer_fault(request, fault)

        token = request.match_info["token"]
        if not _TOKEN.fullmatch(token):
            response = self._json(404, error_body(404, "Not Found"))
        elif token != self.token:
            response = self._json(401, error_body(401, "Unauthorized"))
        elif (handler := self._methods.get(method.lower())) is None:
            self.unknown_methods.append(method)
            response = self._json(404, error_body(404, "Not Found"))
        else:
            try:
                result = await handler(params)
            except ApiError as error:
                response = self._json(error.code, error_body(error.code, error.description, error.parameters))
            else:
                response = self._json(200, {"ok": True, "result": result})
        self._record(request, method, params, response.status)
        return response

    async def _not_found(self, request: web.Request) -> web.Response:
        self._record(request, request.path, {}, 404)
        return self._json(404, error_body(404, "Not Found"))

    # -- methods --------------------------------------------------------------------------------------------

    def _bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Loopline", "username": self.username}

    async def _get_me(self, params: Mapping[str, Any]) -> Any:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _message_json(self, state: Mapping[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": state["message_id"],
            "from": self._bot_user(),
            "chat": _chat_object(state["chat_id"]),
            "date": state["date"],
            "text": state["text"],
        }
        if state.get("edit_date"):
            message["edit_date"] = state["edit_date"]
        markup = state.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        return message

    @staticmethod
    def _text_param(params: Mapping[str, Any]) -> str:
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT_CHARS:
            raise ApiError(400, "Bad Request: message is too long")
        return text

    async def _send_message(self, params: Mapping[str, Any]) -> Any:
        chat_id = _chat_param(params)
        text = self._text_param(params)
        markup = _check_markup(params.get("reply_markup"))
        message_id = self._next_message_id.get(chat_id, 0) + 1
        self._next_message_id[chat_id] = message_id
        state = {
            "chat_id": chat_id,
            "message_id": message_id,
            "date": int(time.time()),
            "text": text,
            "reply_markup": markup,
        }
        self._messages[(chat_id, message_id)] = state
        self.sent.append(
            {
                "chat_id": chat_id,
                "text": text,
                "reply_markup": markup,
                "message_id": message_id,
                "at": time.monotonic(),
                "params": dict(params),
            }
        )
        return self._message_json(state)

    def _editable(self, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The message an edit targets; None for an inline message (answered with True)."""
        if params.get("inline_message_id"):
            return None
        chat_id = _chat_param(params)
        message_id = _int_param(params, "message_id", required=True)
        assert message_id is not None
        state = self._messages.get((chat_id, message_id))
        if state is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        return state

    async def _edit_message_text(self, params: Mapping[str, Any]) -> Any:
        text = self._text_param(params)
        markup = _check_markup(params.get("reply_markup"))
        state = self._editable(params)
        self.edits.append({"method": "editMessageText", **dict(params), "reply_markup": markup})
        if state is None:
            return True
        if state["text"] == text and state["reply_markup"] == markup:
            raise ApiError(400, NOT_MODIFIED)
        state.update(text=text, reply_markup=markup, edit_date=int(time.time()))
        return self._message_json(state)

    async def _edit_message_reply_markup(self, params: Mapping[str, Any]) -> Any:
        markup = _check_markup(params.get("reply_markup"))
        state = self._editable(params)
        self.edits.append({"method": "editMessageReplyMarkup", **dict(params), "reply_markup": markup})
        if state is None:
            return True
        if state["reply_markup"] == markup:
            raise ApiError(400, NOT_MODIFIED)
        state.update(reply_markup=markup, edit_date=int(time.time()))
        return self._message_json(state)

    async def _answer_callback_query(self, params: Mapping[str, Any]) -> Any:
        query_id = params.get("callback_query_id")
        if not isinstance(query_id, str) or not query_id:
            raise ApiError(400, QUERY_TOO_OLD)
        text = params.get("text")
        if isinstance(text, str) and len(text) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        if query_id in self._answered_queries:
            raise ApiError(400, QUERY_TOO_OLD)
        self._answered_queries.add(query_id)
        self.callback_answers.append(
            {
                "callback_query_id": query_id,
                "text": text,
                "show_alert": _bool_param(params, "show_alert"),
                "url": params.get("url"),
                "cache_time": _int_param(params, "cache_time"),
            }
        )
        return True

    async def _set_webhook(self, params: Mapping[str, Any]) -> Any:
        url = params.get("url")
        if not isinstance(url, str) or not url:
            self.webhook = None
            return True
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        if (parts.port or 443) not in WEBHOOK_PORTS:
            raise ApiError(
                400, "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"
            )
        secret = params.get("secret_token")
        if secret is not None and (not isinstance(secret, str) or not _SECRET_TOKEN.fullmatch(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        if allowed is not None:
            self.allowed_updates = list(allowed)
        if _bool_param(params, "drop_pending_updates"):
            self._updates.clear()
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "allowed_updates": allowed,
            "max_connections": _int_param(params, "max_connections") or 40,
        }
        self._wake()  # a long poll in progress ends with 409
        return True

    async def _delete_webhook(self, params: Mapping[str, Any]) -> Any:
        self.webhook = None
        if _bool_param(params, "drop_pending_updates"):
            self._updates.clear()
        return True

    async def _get_webhook_info(self, params: Mapping[str, Any]) -> Any:
        info: dict[str, Any] = {
            "url": self.webhook["url"] if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook:
            info["max_connections"] = self.webhook["max_connections"]
            info["ip_address"] = "127.0.0.1"
            if self.webhook["allowed_updates"] is not None:
                info["allowed_updates"] = self.webhook["allowed_updates"]
        if self.last_error is not None:
            info["last_error_date"], info["last_error_message"] = self.last_error
        return info

    def _deliverable(self) -> list[dict[str, Any]]:
        allowed = set(self.allowed_updates or ())
        if allowed:
            return [u for u in self._updates if _update_type(u) in allowed]
        return [u for u in self._updates if _update_type(u) not in DEFAULT_UPDATE_TYPES_EXCLUDED]

    async def _get_updates(self, params: Mapping[str, Any]) -> Any:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = _int_param(params, "offset")
        limit = min(max(_int_param(params, "limit") or 100, 1), 100)
        wait = max(_int_param(params, "timeout") or 0, 0)
        allowed = params.get("allowed_updates")
        if allowed is not None:
            self.allowed_updates = list(allowed)
        if offset is not None and offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset is not None and offset < 0:
            self._updates = self._updates[offset:]

        self._poll_generation += 1
        generation = self._poll_generation
        self._wake()  # an older poll still waiting ends with 409
        deadline = time.monotonic() + wait
        while True:
            ready = self._deliverable()
            if ready:
                return ready[:limit]
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stopping.is_set():
                return []
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=remaining)
            if self._poll_generation != generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            if self.webhook is not None:
                raise ApiError(409, "Conflict: terminated by setWebhook request")


# -- updates Telegram would send ---------------------------------------------------------------------------

_update_ids = itertools.count(700_000_001)
_message_ids = itertools.count(5001)
_query_ids = itertools.count(4_382_917_450_000_000_001)


def _user(user_id: int, *, first_name: str, language_code: str | None) -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if language_code is not None:
        user["language_code"] = language_code
    return user


def _private_chat(chat_id: int, first_name: str) -> dict[str, Any]:
    return {"id": chat_id, "first_name": first_name, "type": "private"}


def _entities(text: str) -> list[dict[str, Any]]:
    match = re.match(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]+)?", text)
    return [{"offset": 0, "length": len(match.group(0)), "type": "bot_command"}] if match else []


def _message(
    chat_id: int,
    *,
    first_name: str = "Alex",
    language_code: str | None = "en",
    message_id: int | None = None,
    date: int | None = None,
    **content: Any,
) -> dict[str, Any]:
    return {
        "message_id": message_id if message_id is not None else next(_message_ids),
        "from": _user(chat_id, first_name=first_name, language_code=language_code),
        "chat": _private_chat(chat_id, first_name),
        "date": date if date is not None else int(time.time()),
        **content,
    }


def _update(kind: str, payload: Mapping[str, Any], update_id: int | None) -> dict[str, Any]:
    return {"update_id": update_id if update_id is not None else next(_update_ids), kind: dict(payload)}


def update_text(
    chat_id: int,
    text: str,
    *,
    update_id: int | None = None,
    language_code: str | None = "en",
    first_name: str = "Alex",
    message_id: int | None = None,
) -> dict[str, Any]:
    """A private text message, with a ``bot_command`` entity when it starts with a command."""
    content: dict[str, Any] = {"text": text}
    if entities := _entities(text):
        content["entities"] = entities
    message = _message(
        chat_id, first_name=first_name, language_code=language_code, message_id=message_id, **content
    )
    return _update("message", message, update_id)


def update_button(
    chat_id: int,
    data: str | None,
    *,
    message_id: int,
    update_id: int | None = None,
    query_id: str | None = None,
    message_text: str = "How satisfied are you with your local park?",
    language_code: str | None = "en",
    first_name: str = "Alex",
) -> dict[str, Any]:
    """A press of an inline button on the bot's message ``message_id``; ``data`` None for game buttons."""
    query: dict[str, Any] = {
        "id": query_id if query_id is not None else str(next(_query_ids)),
        "from": _user(chat_id, first_name=first_name, language_code=language_code),
        "message": {
            "message_id": message_id,
            "from": {"id": 5123456789, "is_bot": True, "first_name": "Loopline", "username": BOT_USERNAME},
            "chat": _private_chat(chat_id, first_name),
            "date": int(time.time()) - 30,
            "text": message_text,
            "reply_markup": {"inline_keyboard": [[{"text": "1", "callback_data": data or "x"}]]},
        },
        "chat_instance": "-7003321789342711302",
    }
    if data is not None:
        query["data"] = data
    return _update("callback_query", query, update_id)


def update_contact(
    chat_id: int,
    phone: str,
    *,
    own: bool = True,
    update_id: int | None = None,
    first_name: str = "Alex",
) -> dict[str, Any]:
    """A shared contact: the sender's own (``user_id`` = sender) or someone else's."""
    contact = {
        "phone_number": phone,
        "first_name": first_name if own else "Sam",
        "user_id": chat_id if own else chat_id + 1000,
    }
    return _update("message", _message(chat_id, first_name=first_name, contact=contact), update_id)


def _membership(chat_id: int, old: str, new: str, update_id: int | None) -> dict[str, Any]:
    bot = {"id": 5123456789, "is_bot": True, "first_name": "Loopline", "username": BOT_USERNAME}
    change: dict[str, Any] = {
        "chat": _private_chat(chat_id, "Alex"),
        "from": _user(chat_id, first_name="Alex", language_code="en"),
        "date": int(time.time()),
        "old_chat_member": {"user": bot, "status": old},
        "new_chat_member": {"user": bot, "status": new, **({"until_date": 0} if new == "kicked" else {})},
    }
    return _update("my_chat_member", change, update_id)


def update_blocked(chat_id: int, *, update_id: int | None = None) -> dict[str, Any]:
    """The resident blocked the bot (``my_chat_member`` -> "kicked")."""
    return _membership(chat_id, "member", "kicked", update_id)


def update_unblocked(chat_id: int, *, update_id: int | None = None) -> dict[str, Any]:
    """The resident unblocked the bot (``my_chat_member`` -> "member")."""
    return _membership(chat_id, "kicked", "member", update_id)


def update_photo(chat_id: int, *, caption: str | None = None, update_id: int | None = None) -> dict[str, Any]:
    sizes = [
        {
            "file_id": f"AgACAgQAAxkBAAI{size}",
            "file_unique_id": f"AQAD{size}",
            "file_size": size * 40,
            "width": size,
            "height": size * 3 // 4,
        }
        for size in (90, 320, 800)
    ]
    content: dict[str, Any] = {"photo": sizes}
    if caption is not None:
        content["caption"] = caption
    return _update("message", _message(chat_id, **content), update_id)


def update_sticker(chat_id: int, *, update_id: int | None = None) -> dict[str, Any]:
    sticker = {
        "file_id": "CAACAgIAAxkBAAIBY2Z",
        "file_unique_id": "AgADYQ",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "emoji": "👍",
    }
    return _update("message", _message(chat_id, sticker=sticker), update_id)


def update_voice(chat_id: int, *, update_id: int | None = None) -> dict[str, Any]:
    voice = {
        "file_id": "AwACAgQAAxkBAAIB",
        "file_unique_id": "AgADxw",
        "duration": 4,
        "mime_type": "audio/ogg",
    }
    return _update("message", _message(chat_id, voice=voice), update_id)


def update_document(chat_id: int, *, update_id: int | None = None) -> dict[str, Any]:
    document = {
        "file_id": "BQACAgQAAxkBAAIB",
        "file_unique_id": "AgADyA",
        "file_name": "photo.pdf",
        "mime_type": "application/pdf",
        "file_size": 48213,
    }
    return _update("message", _message(chat_id, document=document), update_id)


def update_location(chat_id: int, *, update_id: int | None = None) -> dict[str, Any]:
    return _update(
        "message", _message(chat_id, location={"latitude": 51.4816, "longitude": -3.1791}), update_id
    )


def update_edited(chat_id: int, text: str, *, update_id: int | None = None) -> dict[str, Any]:
    message = _message(chat_id, text=text, edit_date=int(time.time()))
    return _update("edited_message", message, update_id)


def update_group_text(
    chat_id: int,
    text: str,
    *,
    user_id: int = 900000777,
    update_id: int | None = None,
    supergroup: bool = True,
) -> dict[str, Any]:
    """A message in a group chat (``chat_id`` negative: -100... for a supergroup)."""
    if chat_id >= 0:
        raise ValueError("group chat ids are negative")
    content: dict[str, Any] = {"text": text}
    if entities := _entities(text):
        content["entities"] = entities
    message = {
        "message_id": next(_message_ids),
        "from": _user(user_id, first_name="Jo", language_code="en"),
        "chat": {
            "id": chat_id,
            "title": "Riverside residents",
            "type": "supergroup" if supergroup else "group",
        },
        "date": int(time.time()),
        **content,
    }
    return _update("message", message, update_id)


def update_channel_post(chat_id: int, text: str, *, update_id: int | None = None) -> dict[str, Any]:
    post = {
        "message_id": next(_message_ids),
        "sender_chat": {"id": chat_id, "title": "Council news", "type": "channel"},
        "chat": {"id": chat_id, "title": "Council news", "type": "channel"},
        "date": int(time.time()),
        "text": text,
    }
    return _update("channel_post", post, update_id)


async def post_update(
    session: aiohttp.ClientSession,
    local_url: str,
    update: Mapping[str, Any],
    *,
    secret: str | None,
    headers: Mapping[str, str] | None = None,
) -> int:
    """POST ``update`` to a webhook as Telegram does (JSON, secret token header); return the status.

    Call it again with the same update to play a redelivery.
    """
    all_headers = {"Content-Type": "application/json"}
    if secret is not None:
        all_headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    all_headers.update(headers or {})
    body = json.dumps(update, ensure_ascii=False).encode("utf-8")
    async with session.post(local_url, data=body, headers=all_headers) as response:
        await response.read()
        return response.status
