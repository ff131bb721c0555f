"""A faithful fake of the Slack Web API, plus a signer that plays Slack's signed requests to Loopline.

Run slack_sdk's real ``AsyncWebClient`` against it (``web_client(token, base_url=fake.base_url)``)::

    async with FakeSlack() as fake:
        fake.faults.append(Fault.ratelimited(retry_after=1))            # the next call gets a 429
        fake.faults.append(Fault.error("channel_not_found").on("chat.postMessage"))
        fake.always = Fault.server_error(503)                            # outage until set back to None

What it mimics (Web API as slack_sdk 3.x speaks it):

* ``/api/<method>``, GET or POST; parameters from the query string (``auth.test``, ``users.info``), a
  form body or a JSON body (``chat.postMessage``, ``views.open``...). Every answer is
  ``application/json; charset=utf-8`` and, as Slack does, HTTP 200 with ``{"ok": false, "error": ...}``
  for API errors; 429 with ``Retry-After`` for rate limits.
* Token: ``Authorization: Bearer xoxb-...`` (or a ``token`` parameter). None: ``not_authed``; not
  ours: ``invalid_auth``. Unknown method: ``unknown_method``.
* Implemented: ``auth.test``, ``chat.postMessage`` (``channel_not_found`` for a channel it does not
  know, ``not_in_channel`` for one the bot is not in, ``no_text``, ``msg_too_long`` over 40,000
  characters, ``invalid_blocks``), ``chat.postEphemeral`` (``user_not_in_channel``), ``views.open``
  (trigger ids are single use: ``exchanged_trigger_id``; malformed: ``invalid_trigger_id``),
  ``views.update`` (``not_found``, ``hash_conflict``) and ``users.info`` (``user_not_found``).
* Views and message blocks are checked against the Block Kit limits Loopline relies on (title 24
  characters, 100 blocks in a modal and 50 in a message, option text 75 and value 150 characters,
  at most 100 select options and 10 radio or checkbox options, initial options that are among the
  options, ``initial_value`` within ``max_length``, unique block ids...). A breach is answered as Slack
  does: ``invalid_arguments`` (views) or ``invalid_blocks`` (messages) with ``response_metadata.messages``.

Recorded: :attr:`FakeSlack.requests` (every call, with monotonic ``at``), :attr:`FakeSlack.messages`
(accepted ``chat.postMessage`` calls), :attr:`FakeSlack.ephemerals`, :attr:`FakeSlack.views` (by id).

Fault precedence: :attr:`FakeSlack.always`, then :attr:`FakeSlack.faults`; a fault made with
``.on(method)`` only matches that method. Faults answer before the token check.

:class:`SlackSigner` builds what Slack POSTs to Loopline (slash command, shortcuts, an ``add_detail``
press, a report-modal submission, events, ``url_verification``, ``ssl_check``) as ``(body, headers)``,
signed with slack_sdk's ``SignatureVerifier.generate_signature`` at the real current time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from channels.base import HttpRequest
from channels.slack import (
    ACTION_ADD_DETAIL,
    BLOCK_FOLLOW_UP,
    BLOCK_HEARD,
    BLOCK_HOW_MANY,
    BLOCK_KIND,
    BLOCK_PLACE,
    BLOCK_PLACE_OTHER,
    BLOCK_QUOTE,
    BLOCK_THEMES,
    HOW_MANY_LABELS,
    KIND_LABELS,
    MESSAGE_SHORTCUT,
    MODAL_CALLBACK_ID,
    ReportForm,
    report_modal,
)
from tests.fakes.server import FakeServer

DEFAULT_BOT_TOKEN = "xoxb-1000000001-2000000002-LooplineFakeBotToken01"
SIGNING_SECRET = "e2b7c0f4a9d35816b0c1d2e3f4a5b6c7"
TEAM_ID = "T0LOOPLINE"
TEAM_DOMAIN = "exampleshire-council"
TEAM_NAME = "Exampleshire Council"
APP_ID = "A0LOOPLINE"
BOT_USER_ID = "U0LOOPBOT"
BOT_ID = "B0LOOPBOT"
STAFF_USER_ID = "U0STAFF01"
STAFF_USERNAME = "sam.officer"
RESIDENT_POSTER_ID = "U0COLLEAGUE"
CHANNEL_ID = "C0STREET"
CHANNEL_NAME = "street-reports"
OTHER_TEAM_ID = "T0ELSEWHERE"
HANG_SECONDS = 3600.0  # "far longer than any client timeout"; ends early when the server stops

_TRIGGER_ID = re.compile(r"[0-9]+\.[0-9]+\.[0-9a-f]{16,64}")
_MAX_TEXT = 40_000
_JSON = "application/json"


def api_error(error: str, **extra: Any) -> dict[str, Any]:
    """Slack's error object: ``{"ok": false, "error": ...}`` plus, e.g., ``response_metadata``."""
    return {"ok": False, "error": error, **extra}


@dataclass(frozen=True, slots=True)
class Fault:
    """A canned answer the fake gives instead of processing a request."""

    status: int
    body: bytes = b""
    content_type: str = _JSON
    headers: Mapping[str, str] = field(default_factory=dict)
    hangs: bool = False  # wait HANG_SECONDS (or until the server stops), then answer 503
    drops: bool = False  # close the connection without answering
    method: str | None = None  # only for this Web API method ("chat.postMessage"); None: any

    def on(self, method: str) -> Fault:
        """The same fault, but only for requests to ``method``."""
        return replace(self, method=method)

    def matches(self, method: str) -> bool:
        return self.method is None or self.method == method

    @classmethod
    def error(cls, error: str, status: int = 200) -> Fault:
        """``{"ok": false, "error": error}``; Slack sends API errors with HTTP 200."""
        return cls(status=status, body=json.dumps(api_error(error)).encode())

    @classmethod
    def ratelimited(cls, retry_after: int = 1) -> Fault:
        """HTTP 429 with ``Retry-After`` (whole seconds), as Slack rate-limits a method."""
        return cls(
            status=429,
            body=json.dumps(api_error("ratelimited")).encode(),
            headers={"Retry-After": str(retry_after)},
        )

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        error = "service_unavailable" if status == 503 else "fatal_error"
        return cls(status=status, body=json.dumps(api_error(error)).encode())

    @classmethod
    def html(cls, status: int = 502) -> Fault:
        """The HTML error page a load balancer in front of the API sends during an outage."""
        page = (
            f"<html><head><title>{status} Bad Gateway</title></head>"
            f"<body><center><h1>{status} Bad Gateway</h1></center></body></html>"
        )
        return cls(status=status, body=page.encode(), content_type="text/html")

    @classmethod
    def channel_not_found(cls) -> Fault:
        return cls.error("channel_not_found")

    @classmethod
    def not_in_channel(cls) -> Fault:
        return cls.error("not_in_channel")

    @classmethod
    def expired_trigger_id(cls) -> Fault:
        return cls.error("expired_trigger_id")

    @classmethod
    def invalid_auth(cls) -> Fault:
        return cls.error("invalid_auth")

    @classmethod
    def hang(cls) -> Fault:
        """Never answer within any client timeout; released (with a 503) when the server stops."""
        return cls(status=503, hangs=True)

    @classmethod
    def disconnect(cls) -> Fault:
        """Read the request, then drop the connection without a response."""
        return cls(status=0, drops=True)


@dataclass(frozen=True, slots=True)
class SeenCall:
    """One Web API request as the fake received it."""

    method: str
    http_method: str
    params: Mapping[str, Any]
    token: str | None
    answered: int  # HTTP status sent back; 0 if the connection was dropped
    error: str | None  # Slack's error string when ok was false
    at: float  # time.monotonic() when it arrived


class ApiError(Exception):
    """Raised by a method handler: answered ``{"ok": false, "error": ...}`` with HTTP 200."""

    def __init__(self, error: str, messages: Sequence[str] = ()) -> None:
        super().__init__(error)
        self.error = error
        self.messages = tuple(messages)


# -- Block Kit checks -----------------------------------------------------------------------------------


def _text_object(
    value: Any, where: str, limit: int, problems: list[str], *, plain_only: bool = False
) -> None:
    if not isinstance(value, dict) or value.get("type") not in ("plain_text", "mrkdwn"):
        problems.append(f"[ERROR] must be a text object [json-pointer:{where}]")
        return
    if plain_only and value["type"] != "plain_text":
        problems.append(f"[ERROR] must be plain_text [json-pointer:{where}/type]")
    text = value.get("text")
    if not isinstance(text, str) or not text:
        problems.append(f"[ERROR] must be more than 0 characters [json-pointer:{where}/text]")
    elif len(text) > limit:
        problems.append(f"[ERROR] must be less than {limit + 1} characters [json-pointer:{where}/text]")


def _check_options(element: Mapping[str, Any], where: str, limit: int, problems: list[str]) -> None:
    options = element.get("options")
    plain_only = element.get("type") in ("static_select", "multi_static_select")
    if not isinstance(options, list) or not options:
        problems.append(f"[ERROR] must provide at least 1 option [json-pointer:{where}/options]")
        return
    if len(options) > limit:
        problems.append(f"[ERROR] must provide at most {limit} items [json-pointer:{where}/options]")
    values: list[Any] = []
    for index, option in enumerate(options):
        at = f"{where}/options/{index}"
        if not isinstance(option, dict):
            problems.append(f"[ERROR] must be an option object [json-pointer:{at}]")
            continue
        _text_object(option.get("text"), f"{at}/text", 75, problems, plain_only=plain_only)
        value = option.get("value")
        if not isinstance(value, str) or not 1 <= len(value) <= 150:
            problems.append(f"[ERROR] must be 1-150 characters [json-pointer:{at}/value]")
        values.append(value)
    if len(set(map(str, values))) != len(values):
        problems.append(f"[ERROR] option values must be unique [json-pointer:{where}/options]")
    initial = [element["initial_option"]] if "initial_option" in element else []
    initial += element.get("initial_options") or []
    for index, chosen in enumerate(initial):
        if chosen not in options:
            problems.append(
                f"[ERROR] initial option must exactly match one of the options "
                f"[json-pointer:{where}/initial_option{'s/' + str(index) if index else ''}]"
            )


def _check_element(element: Any, where: str, problems: list[str]) -> None:
    if not isinstance(element, dict):
        problems.append(f"[ERROR] must be an element object [json-pointer:{where}]")
        return
    kind = element.get("type")
    action_id = element.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or len(action_id) > 255):
        problems.append(
            f"[ERROR] must be a string of at most 255 characters [json-pointer:{where}/action_id]"
        )
    if kind == "plain_text_input":
        max_length = element.get("max_length", 3000)
        if not isinstance(max_length, int) or not 1 <= max_length <= 3000:
            problems.append(f"[ERROR] must be 1-3000 [json-pointer:{where}/max_length]")
            max_length = 3000
        initial = element.get("initial_value")
        if initial is not None and (not isinstance(initial, str) or len(initial) > max_length):
            problems.append(
                f"[ERROR] must be at most max_length characters [json-pointer:{where}/initial_value]"
            )
        if "placeholder" in element:
            _text_object(element["placeholder"], f"{where}/placeholder", 150, problems, plain_only=True)
    elif kind in ("static_select", "multi_static_select"):
        _check_options(element, where, 100, problems)
        if "placeholder" in element:
            _text_object(element["placeholder"], f"{where}/placeholder", 150, problems, plain_only=True)
    elif kind in ("radio_buttons", "checkboxes"):
        _check_options(element, where, 10, problems)
    elif kind == "button":
        _text_object(element.get("text"), f"{where}/text", 75, problems, plain_only=True)
        value = element.get("value")
        if value is not None and (not isinstance(value, str) or len(value) > 2000):
            problems.append(f"[ERROR] must be at most 2000 characters [json-pointer:{where}/value]")
    else:
        problems.append(f"[ERROR] unsupported element type {kind!r} [json-pointer:{where}/type]")


def check_blocks(blocks: Any, where: str, limit: int) -> list[str]:
    """Block Kit problems in ``blocks`` (Slack's "[ERROR] ... [json-pointer:...]" form), or none."""
    problems: list[str] = []
    if not isinstance(blocks, list):
        return [f"[ERROR] must be an array [json-pointer:{where}]"]
    if len(blocks) > limit:
        problems.append(f"[ERROR] no more than {limit} items allowed [json-pointer:{where}]")
    seen: set[str] = set()
    for index, block in enumerate(blocks):
        at = f"{where}/{index}"
        if not isinstance(block, dict):
            problems.append(f"[ERROR] must be a block object [json-pointer:{at}]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or len(block_id) > 255:
                problems.append(f"[ERROR] must be at most 255 characters [json-pointer:{at}/block_id]")
            elif block_id in seen:
                problems.append(f"[ERROR] block_id must be unique [json-pointer:{at}/block_id]")
            else:
                seen.add(block_id)
        kind = block.get("type")
        if kind == "section":
            _text_object(block.get("text"), f"{at}/text", 3000, problems)
        elif kind == "input":
            _text_object(block.get("label"), f"{at}/label", 2000, problems, plain_only=True)
            if "hint" in block:
                _text_object(block["hint"], f"{at}/hint", 2000, problems, plain_only=True)
            _check_element(block.get("element"), f"{at}/element", problems)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
                problems.append(f"[ERROR] must have 1-25 elements [json-pointer:{at}/elements]")
            else:
                for number, element in enumerate(elements):
                    _check_element(element, f"{at}/elements/{number}", problems)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
                problems.append(f"[ERROR] must have 1-10 elements [json-pointer:{at}/elements]")
        elif kind not in ("divider", "header", "image"):
            problems.append(f"[ERROR] unsupported block type {kind!r} [json-pointer:{at}/type]")
    return problems


def check_view(view: Any) -> list[str]:
    """Problems Slack would report for ``view`` in views.open / views.update."""
    if not isinstance(view, dict):
        return ["[ERROR] must be an object [json-pointer:/view]"]
    problems: list[str] = []
    if view.get("type") not in ("modal", "home"):
        problems.append("[ERROR] must be modal or home [json-pointer:/view/type]")
    if view.get("type") == "modal":
        _text_object(view.get("title"), "/view/title", 24, problems, plain_only=True)
        for name in ("submit", "close"):
            if name in view:
                _text_object(view[name], f"/view/{name}", 24, problems, plain_only=True)
        has_inputs = any(isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or [])
        if has_inputs and "submit" not in view:
            problems.append(
                "[ERROR] submit is required when a view has input blocks [json-pointer:/view/submit]"
            )
    for name, limit in (("private_metadata", 3000), ("callback_id", 255), ("external_id", 255)):
        value = view.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            problems.append(f"[ERROR] must be at most {limit} characters [json-pointer:/view/{name}]")
    problems += check_blocks(view.get("blocks"), "/view/blocks", 100)
    return problems


# -- the server -----------------------------------------------------------------------------------------


class FakeSlack(FakeServer):
    """A local Slack Web API on 127.0.0.1 and a random port."""

    name = "FakeSlack"
    path_prefix = "/api/"

    def __init__(
        self,
        token: str = DEFAULT_BOT_TOKEN,
        *,
        team_id: str = TEAM_ID,
        bot_user_id: str = BOT_USER_ID,
        bot_id: str = BOT_ID,
    ) -> None:
        self.token = token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        #: channel id -> whether the bot is a member. DMs ("D...") and user ids ("U...") always work.
        self.channels: dict[str, bool] = {CHANNEL_ID: True}
        #: channel id -> user ids in it (for chat.postEphemeral); missing: everyone is in it.
        self.members: dict[str, set[str]] = {}
        self.users: dict[str, dict[str, Any]] = {
            STAFF_USER_ID: _user(STAFF_USER_ID, STAFF_USERNAME, "Sam Officer", team_id),
            bot_user_id: {**_user(bot_user_id, "loopline", "Loopline", team_id), "is_bot": True},
        }
        self.requests: list[SeenCall] = []
        self.messages: list[dict[str, Any]] = []
        self.ephemerals: list[dict[str, Any]] = []
        self.views: dict[str, dict[str, Any]] = {}
        self.faults: deque[Fault] = deque()
        self.always: Fault | None = None
        self._used_triggers: set[str] = set()
        self._ts = itertools.count(1)
        self._methods = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.postEphemeral": self._post_ephemeral,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "users.info": self._users_info,
        }
        super().__init__()

    # -- lifecycle ---------------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{method}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._not_found)

    def calls(self, method: str) -> list[SeenCall]:
        return [call for call in self.requests if call.method == method]

    def reset(self) -> None:
        """Forget recorded traffic and pending faults (views and channels stay)."""
        self.requests.clear()
        self.messages.clear()
        self.ephemerals.clear()
        self.faults.clear()
        self.always = None

    # -- HTTP --------------------------------------------------------------------------------------------

    @staticmethod
    def _json(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> web.Response:
        return web.Response(
            status=status,
            body=json.dumps(payload).encode(),
            content_type=_JSON,
            charset="utf-8",
            headers=dict(headers or {}),
        )

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == _JSON:
                try:
                    body = await request.json()
                except ValueError:
                    raise ApiError("invalid_json") from None
                if not isinstance(body, dict):
                    raise ApiError("json_not_object")
                params.update(body)
            else:
                form = await request.post()
                params.update({key: str(value) for key, value in form.items()})
        return params

    def _token(self, request: web.Request, params: Mapping[str, Any]) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token:
            return token
        value = params.get("token")
        return value if isinstance(value, str) and value else None

    def _next_fault(self, method: str) -> Fault | None:
        if self.always is not None and self.always.matches(method):
            return self.always
        for fault in self.faults:
            if fault.matches(method):
                self.faults.remove(fault)
                return fault
        return None

    async def _answer_fault(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        if fault.drops:
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=204)
        if fault.hangs:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=HANG_SECONDS)
        return web.Response(
            status=fault.status,
            body=fault.body,
            headers={"Content-Type": fault.content_type, **fault.headers},
        )

    def _record(
        self,
        method: str,
        request: web.Request,
        params: Mapping[str, Any],
        token: str | None,
        status: int,
        error: str | None,
    ) -> None:
        self.requests.append(
            SeenCall(method, request.method, dict(params), token, status, error, time.monotonic())
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        arrived = time.monotonic()
        try:
            params = await self._params(request)
        except ApiError as error:
            self._record(method, request, {}, None, 200, error.error)
            return self._json(200, api_error(error.error))
        token = self._token(request, params)
        params.pop("token", None)
        fault = self._next_fault(method)
        if fault is not None:
            said: str | None = None
            with contextlib.suppress(ValueError, AttributeError):
                said = json.loads(fault.body).get("error")
            self.requests.append(SeenCall(method, request.method, params, token, fault.status, said, arrived))
            return await self._answer_fault(request, fault)
        if token is None:
            return self._fail(method, request, params, token, "not_authed")
        if token != self.token:
            return self._fail(method, request, params, token, "invalid_auth")
        handler = self._methods.get(method)
        if handler is None:
            return self._fail(method, request, params, token, "unknown_method")
        try:
            result = handler(params)
        except ApiError as error:
            extra = {"response_metadata": {"messages": list(error.messages)}} if error.messages else {}
            self._record(method, request, params, token, 200, error.error)
            return self._json(200, api_error(error.error, **extra))
        self.requests.append(SeenCall(method, request.method, params, token, 200, None, arrived))
        return self._json(200, {"ok": True, **result})

    def _fail(
        self, method: str, request: web.Request, params: Mapping[str, Any], token: str | None, error: str
    ) -> web.Response:
        self._record(method, request, params, token, 200, error)
        return self._json(200, api_error(error))

    async def _not_found(self, request: web.Request) -> web.Response:
        return web.Response(status=404, text="Not Found")

    # -- methods -----------------------------------------------------------------------------------------

    def _auth_test(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": TEAM_NAME,
            "user": "loopline",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _channel(self, params: Mapping[str, Any]) -> str:
        channel = params.get("channel")
        if not isinstance(channel, str) or not channel:
            raise ApiError("channel_not_found")
        if channel.startswith(("D", "U", "W")):
            return channel
        if channel not in self.channels:
            raise ApiError("channel_not_found")
        if not self.channels[channel]:
            raise ApiError("not_in_channel")
        return channel

    @staticmethod
    def _blocks(params: Mapping[str, Any]) -> list[Any] | None:
        blocks = params.get("blocks")
        if isinstance(blocks, str):  # form-encoded callers send JSON text
            try:
                blocks = json.loads(blocks)
            except ValueError:
                raise ApiError("invalid_blocks_format") from None
        if blocks is None:
            return None
        problems = check_blocks(blocks, "/blocks", 50)
        if problems:
            raise ApiError("invalid_blocks", problems)
        return list(blocks)

    def _message_text(self, params: Mapping[str, Any], blocks: list[Any] | None) -> str:
        text = params.get("text")
        if not isinstance(text, str):
            text = ""
        if not text and not blocks:
            raise ApiError("no_text")
        if len(text) > _MAX_TEXT:
            raise ApiError("msg_too_long")
        return text

    def _post_message(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        blocks = self._blocks(params)
        text = self._message_text(params, blocks)
        ts = self._next_ts()
        message = {
            "type": "message",
            "subtype": "bot_message",
            "text": text,
            "ts": ts,
            "bot_id": self.bot_id,
            "user": self.bot_user_id,
            "app_id": APP_ID,
            **({"blocks": blocks} if blocks else {}),
        }
        self.messages.append({"channel": channel, "text": text, "blocks": blocks, "ts": ts})
        return {"channel": channel, "ts": ts, "message": message}

    def _post_ephemeral(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        user = params.get("user")
        if not isinstance(user, str) or user not in self.users:
            raise ApiError("user_not_found")
        members = self.members.get(channel)
        if members is not None and user not in members:
            raise ApiError("user_not_in_channel")
        blocks = self._blocks(params)
        text = self._message_text(params, blocks)
        ts = self._next_ts()
        self.ephemerals.append({"channel": channel, "user": user, "text": text, "blocks": blocks, "ts": ts})
        return {"message_ts": ts}

    def _view_param(self, params: Mapping[str, Any]) -> dict[str, Any]:
        view = params.get("view")
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError:
                raise ApiError("invalid_arguments", ["[ERROR] view is not valid JSON"]) from None
        if len(json.dumps(view)) > 250_000:
            raise ApiError("view_too_large")
        problems = check_view(view)
        if problems:
            raise ApiError("invalid_arguments", problems)
        assert isinstance(view, dict)
        return view

    def _stored_view(self, view: Mapping[str, Any], view_id: str) -> dict[str, Any]:
        stored = {
            "id": view_id,
            "team_id": self.team_id,
            "app_id": APP_ID,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
            "root_view_id": view_id,
            "previous_view_id": None,
            "external_id": "",
            "private_metadata": "",
            "callback_id": "",
            "clear_on_close": False,
            "notify_on_close": False,
            **view,
            "state": {"values": {}},
            "hash": f"{time.time():.6f}.{uuid.uuid4().hex[:8]}",
        }
        self.views[view_id] = stored
        return stored

    def _views_open(self, params: Mapping[str, Any]) -> dict[str, Any]:
        trigger_id = params.get("trigger_id")
        if not isinstance(trigger_id, str) or not _TRIGGER_ID.fullmatch(trigger_id):
            raise ApiError("invalid_trigger_id")
        if trigger_id in self._used_triggers:
            raise ApiError("exchanged_trigger_id")
        view = self._view_param(params)
        self._used_triggers.add(trigger_id)
        return {"view": self._stored_view(view, "V" + uuid.uuid4().hex[:10].upper())}

    def _views_update(self, params: Mapping[str, Any]) -> dict[str, Any]:
        view_id = params.get("view_id")
        if not isinstance(view_id, str) or view_id not in self.views:
            raise ApiError("not_found")
        expected = params.get("hash")
        if expected is not None and expected != self.views[view_id]["hash"]:
            raise ApiError("hash_conflict")
        return {"view": self._stored_view(self._view_param(params), view_id)}

    def _users_info(self, params: Mapping[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(params.get("user", "")))
        if user is None:
            raise ApiError("user_not_found")
        return {"user": user}


def _user(user_id: str, name: str, real_name: str, team_id: str) -> dict[str, Any]:
    return {
        "id": user_id,
        "team_id": team_id,
        "name": name,
        "deleted": False,
        "real_name": real_name,
        "tz": "Europe/London",
        "tz_label": "Greenwich Mean Time",
        "tz_offset": 0,
        "profile": {"real_name": real_name, "display_name": name, "email": f"{name}@example.gov.uk"},
        "is_admin": False,
        "is_owner": False,
        "is_bot": False,
        "is_app_user": False,
        "updated": 1767225600,
    }


# -- what Slack sends to Loopline -----------------------------------------------------------------------

Signed = tuple[bytes, dict[str, str]]


def new_trigger_id() -> str:
    """A trigger id in Slack's shape: ``<digits>.<digits>.<hex>``."""
    return f"{int(time.time() * 1000)}.{uuid.uuid4().int % 10**11}.{uuid.uuid4().hex}"


def _hook_url(kind: str, team_id: str) -> str:
    return f"https://hooks.slack.com/{kind}/{team_id}/{uuid.uuid4().int % 10**12}/{uuid.uuid4().hex[:24]}"


def response_url(team_id: str = TEAM_ID) -> str:
    """A slash command's ``response_url``."""
    return _hook_url("commands", team_id)


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _option(label: str, value: str) -> dict[str, Any]:
    return {"text": _plain(label), "value": value}


def state_values(
    form: ReportForm, *, wards: Sequence[str] = (), themes: Sequence[tuple[str, str]] = ()
) -> dict[str, Any]:
    """``view.state.values`` as Slack sends it when the report modal is submitted with ``form``'s values
    (``wards``/``themes`` as given to ``report_modal``: a place in ``wards`` is the ward select, any
    other place the free-text input)."""
    labels = dict(themes)
    ward_chosen = form.place if form.place in wards else None
    typed_place = form.place if ward_chosen is None else None
    values: dict[str, Any] = {
        BLOCK_HEARD: {BLOCK_HEARD: {"type": "plain_text_input", "value": form.heard or None}},
        BLOCK_KIND: {
            BLOCK_KIND: {
                "type": "static_select",
                "selected_option": _option(KIND_LABELS[form.kind], form.kind) if form.kind else None,
            }
        },
        BLOCK_PLACE_OTHER: {BLOCK_PLACE_OTHER: {"type": "plain_text_input", "value": typed_place}},
        BLOCK_HOW_MANY: {
            BLOCK_HOW_MANY: {
                "type": "radio_buttons",
                "selected_option": _option(HOW_MANY_LABELS[form.how_many], form.how_many),
            }
        },
        BLOCK_QUOTE: {BLOCK_QUOTE: {"type": "plain_text_input", "value": form.quote}},
        BLOCK_FOLLOW_UP: {
            BLOCK_FOLLOW_UP: {
                "type": "checkboxes",
                "selected_options": [_option("Someone should follow this up", "yes")]
                if form.follow_up
                else [],
            }
        },
    }
    if wards:
        values[BLOCK_PLACE] = {
            BLOCK_PLACE: {
                "type": "static_select",
                "selected_option": _option(ward_chosen, ward_chosen) if ward_chosen else None,
            }
        }
    if themes or form.themes:
        values[BLOCK_THEMES] = {
            BLOCK_THEMES: {
                "type": "multi_static_select",
                "selected_options": [_option(labels.get(name, name), name) for name in form.themes],
            }
        }
    return values


class SlackSigner:
    """Builds and signs the requests Slack POSTs to Loopline's ``/slack/events``.

    Every builder returns ``(body, headers)``: the exact bytes and lower-case headers to POST (or to
    wrap in :meth:`http_request` for ``channels.slack.dispatch``). Signatures come from slack_sdk's
    ``SignatureVerifier.generate_signature`` with ``timestamp`` defaulting to the real current time;
    pass ``timestamp=time.time() - 301`` for a replay.
    """

    def __init__(self, signing_secret: str = SIGNING_SECRET, *, team_id: str = TEAM_ID) -> None:
        self.signing_secret = signing_secret
        self.team_id = team_id
        self._verifier = SignatureVerifier(signing_secret)

    # -- signing ---------------------------------------------------------------------------------------

    def signature(self, body: bytes, timestamp: str) -> str:
        signature = self._verifier.generate_signature(timestamp=timestamp, body=body)
        assert signature is not None
        return signature

    def headers(
        self,
        body: bytes,
        content_type: str,
        *,
        timestamp: float | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> dict[str, str]:
        stamp = str(int(time.time() if timestamp is None else timestamp))
        headers = {
            "content-type": content_type,
            "user-agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "x-slack-request-timestamp": stamp,
            "x-slack-signature": self.signature(body, stamp),
        }
        if retry_num is not None:
            headers["x-slack-retry-num"] = str(retry_num)
            headers["x-slack-retry-reason"] = retry_reason
        return headers

    def form(self, fields: Mapping[str, str] | Sequence[tuple[str, str]], **sign: Any) -> Signed:
        """A form-encoded body (as slash commands and interactivity arrive), signed."""
        body = urlencode(list(fields.items()) if isinstance(fields, Mapping) else list(fields)).encode()
        return body, self.headers(body, "application/x-www-form-urlencoded", **sign)

    def raw(
        self, body: bytes, content_type: str = "application/x-www-form-urlencoded", **sign: Any
    ) -> Signed:
        """Any bytes, signed (e.g. a malformed ``payload=`` field)."""
        return body, self.headers(body, content_type, **sign)

    def interactive(self, payload: Mapping[str, Any], **sign: Any) -> Signed:
        """An interactivity request: ``payload=<JSON>``, form-encoded."""
        return self.form({"payload": json.dumps(payload, separators=(",", ":"))}, **sign)

    def json(self, payload: Mapping[str, Any], **sign: Any) -> Signed:
        """An Events API request: a JSON body."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        return body, self.headers(body, _JSON, **sign)

    @staticmethod
    def http_request(
        signed: Signed, url: str = "https://loopline.example.gov.uk/slack/events"
    ) -> HttpRequest:
        body, headers = signed
        return HttpRequest(url=url, headers=dict(headers), body=body)

    # -- what staff do -----------------------------------------------------------------------------------

    def _team(self, team_id: str | None) -> dict[str, Any]:
        return {"id": team_id or self.team_id, "domain": TEAM_DOMAIN}

    def _user(self, user_id: str, username: str, team_id: str | None) -> dict[str, Any]:
        return {"id": user_id, "username": username, "name": username, "team_id": team_id or self.team_id}

    def slash_command(
        self,
        text: str,
        *,
        command: str = "/street",
        user_id: str = STAFF_USER_ID,
        user_name: str = STAFF_USERNAME,
        team_id: str | None = None,
        channel_id: str = CHANNEL_ID,
        trigger_id: str | None = None,
        **sign: Any,
    ) -> Signed:
        """``/street <text>`` as Slack posts it (form fields in Slack's order)."""
        team = team_id or self.team_id
        return self.form(
            [
                ("token", "gIkuvaNzQIHg97ATvDxqgjtO"),
                ("team_id", team),
                ("team_domain", TEAM_DOMAIN),
                ("channel_id", channel_id),
                ("channel_name", CHANNEL_NAME),
                ("user_id", user_id),
                ("user_name", user_name),
                ("command", command),
                ("text", text),
                ("api_app_id", APP_ID),
                ("is_enterprise_install", "false"),
                ("response_url", response_url(team)),
                ("trigger_id", trigger_id or new_trigger_id()),
            ],
            **sign,
        )

    def global_shortcut(
        self,
        *,
        callback_id: str = "street_report",
        user_id: str = STAFF_USER_ID,
        username: str = STAFF_USERNAME,
        team_id: str | None = None,
        trigger_id: str | None = None,
        **sign: Any,
    ) -> Signed:
        return self.interactive(
            {
                "type": "shortcut",
                "token": "gIkuvaNzQIHg97ATvDxqgjtO",
                "action_ts": f"{time.time():.6f}",
                "team": self._team(team_id),
                "user": self._user(user_id, username, team_id),
                "is_enterprise_install": False,
                "enterprise": None,
                "callback_id": callback_id,
                "trigger_id": trigger_id or new_trigger_id(),
            },
            **sign,
        )

    def message_shortcut(
        self,
        message_text: str,
        *,
        callback_id: str = MESSAGE_SHORTCUT,
        author_id: str = RESIDENT_POSTER_ID,
        user_id: str = STAFF_USER_ID,
        username: str = STAFF_USERNAME,
        team_id: str | None = None,
        trigger_id: str | None = None,
        **sign: Any,
    ) -> Signed:
        ts = f"{int(time.time()) - 60}.000200"
        return self.interactive(
            {
                "type": "message_action",
                "token": "gIkuvaNzQIHg97ATvDxqgjtO",
                "action_ts": f"{time.time():.6f}",
                "team": self._team(team_id),
                "user": self._user(user_id, username, team_id),
                "channel": {"id": CHANNEL_ID, "name": CHANNEL_NAME},
                "is_enterprise_install": False,
                "enterprise": None,
                "callback_id": callback_id,
                "trigger_id": trigger_id or new_trigger_id(),
                "response_url": _hook_url("app", team_id or self.team_id),
                "message_ts": ts,
                "message": {
                    "type": "message",
                    "user": author_id,
                    "ts": ts,
                    "text": message_text,
                    "client_msg_id": str(uuid.uuid4()),
                    "team": team_id or self.team_id,
                },
            },
            **sign,
        )

    def add_detail_press(
        self,
        report_id: int | str,
        *,
        user_id: str = STAFF_USER_ID,
        username: str = STAFF_USERNAME,
        team_id: str | None = None,
        trigger_id: str | None = None,
        **sign: Any,
    ) -> Signed:
        """A press of the "Add detail" button on the ephemeral "recorded" message."""
        now = f"{time.time():.6f}"
        return self.interactive(
            {
                "type": "block_actions",
                "user": self._user(user_id, username, team_id),
                "api_app_id": APP_ID,
                "token": "gIkuvaNzQIHg97ATvDxqgjtO",
                "container": {
                    "type": "message",
                    "message_ts": now,
                    "channel_id": CHANNEL_ID,
                    "is_ephemeral": True,
                },
                "trigger_id": trigger_id or new_trigger_id(),
                "team": self._team(team_id),
                "enterprise": None,
                "is_enterprise_install": False,
                "channel": {"id": CHANNEL_ID, "name": CHANNEL_NAME},
                "state": {"values": {}},
                "response_url": _hook_url("actions", team_id or self.team_id),
                "actions": [
                    {
                        "action_id": ACTION_ADD_DETAIL,
                        "block_id": "recorded",
                        "text": _plain("Add detail"),
                        "value": str(report_id),
                        "type": "button",
                        "action_ts": now,
                    }
                ],
            },
            **sign,
        )

    def view_submission(
        self,
        form: ReportForm | None = None,
        *,
        values: Mapping[str, Any] | None = None,
        wards: Sequence[str] = (),
        themes: Sequence[tuple[str, str]] = (),
        view_id: str = "V0REPORT01",
        view_hash: str = "1767225600.abcdef12",
        private_metadata: str = "",
        callback_id: str = MODAL_CALLBACK_ID,
        user_id: str = STAFF_USER_ID,
        username: str = STAFF_USERNAME,
        team_id: str | None = None,
        **sign: Any,
    ) -> Signed:
        """The report modal submitted with ``form``'s values (or raw ``values`` for ``view.state.values``).

        ``view.blocks`` is the real :func:`channels.slack.report_modal` for ``wards`` and ``themes``.
        """
        if (form is None) == (values is None):
            raise ValueError("give exactly one of form and values")
        state = (
            dict(values)
            if values is not None
            else state_values(form or ReportForm(heard=""), wards=wards, themes=themes)
        )
        modal = report_modal(
            wards=wards, themes=themes, initial=None, suggested=(), private_metadata=private_metadata
        )
        team = team_id or self.team_id
        view = {
            "id": view_id,
            "team_id": team,
            **modal,
            "callback_id": callback_id,
            "state": {"values": state},
            "hash": view_hash,
            "clear_on_close": False,
            "notify_on_close": False,
            "root_view_id": view_id,
            "previous_view_id": None,
            "app_id": APP_ID,
            "external_id": "",
            "app_installed_team_id": team,
            "bot_id": BOT_ID,
        }
        return self.interactive(
            {
                "type": "view_submission",
                "team": self._team(team_id),
                "user": self._user(user_id, username, team_id),
                "api_app_id": APP_ID,
                "token": "gIkuvaNzQIHg97ATvDxqgjtO",
                "trigger_id": new_trigger_id(),
                "view": view,
                "response_urls": [],
                "is_enterprise_install": False,
                "enterprise": None,
            },
            **sign,
        )

    # -- events ------------------------------------------------------------------------------------------

    def event_callback(
        self,
        event: Mapping[str, Any],
        *,
        event_id: str | None = None,
        team_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
        **sign: Any,
    ) -> Signed:
        """An Events API delivery of ``event``; resend with the same ``event_id`` and ``retry_num`` 1..3
        to play Slack's retries."""
        team = team_id or self.team_id
        return self.json(
            {
                "token": "gIkuvaNzQIHg97ATvDxqgjtO",
                "team_id": team,
                "context_team_id": team,
                "context_enterprise_id": None,
                "api_app_id": APP_ID,
                "event": dict(event),
                "type": "event_callback",
                "event_id": event_id or "Ev" + uuid.uuid4().hex[:10].upper(),
                "event_time": int(time.time()),
                "authorizations": [
                    {
                        "enterprise_id": None,
                        "team_id": team,
                        "user_id": BOT_USER_ID,
                        "is_bot": True,
                        "is_enterprise_install": False,
                    }
                ],
                "is_ext_shared_channel": False,
                "event_context": "4-" + uuid.uuid4().hex,
            },
            retry_num=retry_num,
            retry_reason=retry_reason,
            **sign,
        )

    @staticmethod
    def app_mention(text: str, *, user: str = STAFF_USER_ID, channel: str = CHANNEL_ID) -> dict[str, Any]:
        ts = f"{time.time():.6f}"
        return {
            "type": "app_mention",
            "user": user,
            "text": f"<@{BOT_USER_ID}> {text}",
            "ts": ts,
            "channel": channel,
            "event_ts": ts,
            "client_msg_id": str(uuid.uuid4()),
        }

    def url_verification(self, challenge: str, **sign: Any) -> Signed:
        return self.json(
            {"token": "gIkuvaNzQIHg97ATvDxqgjtO", "challenge": challenge, "type": "url_verification"}, **sign
        )

    def ssl_check(self, **sign: Any) -> Signed:
        return self.form({"ssl_check": "1", "token": "gIkuvaNzQIHg97ATvDxqgjtO"}, **sign)


async def post(session: aiohttp.ClientSession, url: str, signed: Signed) -> tuple[int, bytes]:
    """POST a signed request to a running Loopline server; return status and body."""
    body, headers = signed
    async with session.post(url, data=body, headers=headers) as response:
        return response.status, await response.read()
