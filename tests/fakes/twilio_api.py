"""A faithful fake of Twilio's Messages REST API, plus helpers that play Twilio's signed webhooks.

Run the real ``twilio`` SDK against it (``TwilioSms(api_base_url=fake.base_url, ...)``)::

    async with FakeTwilio() as fake:
        fake.faults.append(Fault.too_many_requests())       # the next request gets a 429
        fake.faults_for["+447700900123"] = [Fault.opted_out()]  # only this recipient fails
        fake.always = Fault.server_error()                  # outage until set back to None

What it mimics (twilio-python 9.x / API 2010-04-01):

* ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded, HTTP Basic auth
  ``AccountSid:AuthToken``. Wrong credentials: 401 with code 20003. Path account other than ours: 404
  with code 20404. Unknown routes: Twilio's JSON 404.
* Validation: ``To`` missing -> 400/21604; neither ``From`` nor ``MessagingServiceSid`` -> 400/21603;
  no ``Body`` (and no ``MediaUrl``/``ContentSid``) -> 400/21602; ``Body`` over 1600 characters ->
  400/21617. Stricter than Twilio: ``To`` must be E.164 (``+`` and 7-15 digits) or 400/21211, so a
  Loopline bug that forgets to normalise shows up.
* Success: 201 with Twilio's message JSON; ``status`` is ``queued``, or ``accepted`` (and
  ``num_segments`` "0", ``from`` null) with a Messaging Service.

Every request is recorded in :attr:`FakeTwilio.attempts` (form fields) and :attr:`FakeTwilio.requests`
(with auth and the status answered); accepted messages in :attr:`FakeTwilio.messages`. For repeated form
fields (``MediaUrl``) the dicts keep the first value; :attr:`SeenRequest.form` keeps all.

Fault precedence: :attr:`FakeTwilio.always`, then :attr:`FakeTwilio.faults_for` for the request's ``To``,
then :attr:`FakeTwilio.faults`. Faults answer before the auth check.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import re
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from tests.fakes.server import FakeServer

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
DEFAULT_AUTH_TOKEN = "fedcba9876543210" * 2
HANG_SECONDS = 3600.0  # "far longer than any client timeout"; ends early when the server stops

#: Form fields: a mapping, or pairs when a name repeats (Twilio signs every value of a repeated name).
FormParams = Mapping[str, str] | Sequence[tuple[str, str]]

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_MAX_BODY_CHARS = 1600

# GSM 03.38 basic character set and the extension table (extension characters cost two septets).
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = set("^{}\\[~]|€\f")

_ERROR_TITLES: dict[int, str] = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "The 'To' number is not a valid phone number.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number is not currently reachable using the 'From' phone number via SMS.",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
}


def sms_segments(text: str) -> int:
    """Segments Twilio would bill for ``text``: GSM-7 160/153, otherwise UCS-2 70/67 (UTF-16 units)."""
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENSION for ch in text):
        units = sum(2 if ch in _GSM_EXTENSION else 1 for ch in text)
        single, multi = 160, 153
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi = 70, 67
    if units <= single:
        return 1
    return math.ceil(units / multi)


def _more_info(code: int) -> str:
    return f"https://www.twilio.com/docs/errors/{code}"


def twilio_error_body(http_status: int, code: int, message: str | None = None) -> dict[str, Any]:
    """Twilio's classic JSON error body."""
    return {
        "code": code,
        "message": message or _ERROR_TITLES.get(code, "Error"),
        "more_info": _more_info(code),
        "status": http_status,
    }


@dataclass(frozen=True, slots=True)
class Fault:
    """A canned answer the fake gives instead of processing a request."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    hangs: bool = False  # wait HANG_SECONDS (or until the server stops), then answer 503
    drops: bool = False  # close the connection without answering

    @classmethod
    def error(cls, http_status: int, code: int, message: str | None = None) -> Fault:
        """``{"code", "message", "more_info", "status"}``: the SDK raises ``TwilioRestException``."""
        body = json.dumps(twilio_error_body(http_status, code, message)).encode()
        headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if http_status == 401 else {}
        return cls(status=http_status, body=body, headers=headers)

    @classmethod
    def rfc9457(cls, http_status: int, code: int, detail: str | None = None) -> Fault:
        """RFC 9457 problem details: since twilio 9.10 the SDK raises ``TwilioServiceException``."""
        body = {
            "type": f"https://www.twilio.com/docs/api/errors/{code}",
            "title": _ERROR_TITLES.get(code, "Error"),
            "status": http_status,
            "code": code,
            "detail": detail or _ERROR_TITLES.get(code, "Error"),
            "instance": f"/{API_VERSION}/Accounts/Messages.json",
        }
        return cls(
            status=http_status, body=json.dumps(body).encode(), content_type="application/problem+json"
        )

    @classmethod
    def html(cls, status: int = 502) -> Fault:
        """An HTML error page, as a load balancer in front of the API would send."""
        page = (
            f"<html><head><title>{status} Bad Gateway</title></head>"
            f"<body><center><h1>{status} Bad Gateway</h1></center></body></html>"
        )
        return cls(status=status, body=page.encode(), content_type="text/html")

    @classmethod
    def raw(cls, status: int, body: bytes | str, content_type: str = "application/json") -> Fault:
        """Any status and body, e.g. ``Fault.raw(201, b"")`` or ``Fault.raw(201, "not json")``."""
        return cls(
            status=status, body=body.encode() if isinstance(body, str) else body, content_type=content_type
        )

    @classmethod
    def hang(cls) -> Fault:
        """Never answer within any client timeout; released (with a 503) when the server stops."""
        return cls(status=503, hangs=True)

    @classmethod
    def disconnect(cls) -> Fault:
        """Read the request, then drop the connection without a response."""
        return cls(status=0, drops=True)

    @classmethod
    def too_many_requests(cls) -> Fault:
        return cls.error(429, 20429)

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls.error(status, 20500)

    @classmethod
    def auth_failed(cls) -> Fault:
        return cls.error(401, 20003, "Authenticate")

    @classmethod
    def opted_out(cls) -> Fault:
        return cls.error(400, 21610)

    @classmethod
    def invalid_number(cls) -> Fault:
        return cls.error(400, 21211)

    @classmethod
    def not_sms_capable(cls) -> Fault:
        return cls.error(400, 21614)

    @classmethod
    def unreachable(cls) -> Fault:
        return cls.error(400, 21612)


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """One request as the fake received it."""

    method: str
    path: str
    headers: Mapping[str, str]
    form: Mapping[str, list[str]]
    basic_auth: tuple[str, str] | None
    answered: int  # HTTP status sent back; 0 if the connection was dropped


class _MultiParams(dict[str, list[str]]):
    """What ``RequestValidator.get_values`` wants for repeated names: an object with ``getall``."""

    def getall(self, name: str) -> list[str]:
        return self[name]


def _pairs(params: FormParams) -> list[tuple[str, str]]:
    if isinstance(params, Mapping):
        return [(str(k), str(v)) for k, v in params.items()]
    return [(str(k), str(v)) for k, v in params]


def encode_form(params: FormParams) -> bytes:
    """``application/x-www-form-urlencoded`` bytes, as Twilio posts them."""
    return urlencode(_pairs(params)).encode("ascii")


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


class FakeTwilio(FakeServer):
    """A local Twilio Messages API on 127.0.0.1 and a random port."""

    name = "FakeTwilio"

    def __init__(self, account_sid: str = DEFAULT_ACCOUNT_SID, auth_token: str = DEFAULT_AUTH_TOKEN) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: list[dict[str, str]] = []
        self.attempts: list[dict[str, str]] = []
        self.requests: list[SeenRequest] = []
        self.faults: deque[Fault] = deque()
        self.faults_for: dict[str, list[Fault]] = {}
        self.always: Fault | None = None
        self._validator = RequestValidator(auth_token)
        super().__init__()

    # -- lifecycle -------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/2010-04-01/Accounts/{account_sid}/Messages.json", self._create_message)
        app.router.add_route("*", "/{tail:.*}", self._not_found)

    def reset(self) -> None:
        """Forget recorded traffic and pending faults."""
        self.messages.clear()
        self.attempts.clear()
        self.requests.clear()
        self.faults.clear()
        self.faults_for.clear()
        self.always = None

    def message(self, sid: str) -> dict[str, str] | None:
        """The accepted message with this sid, if any."""
        return next((m for m in self.messages if m["sid"] == sid), None)

    # -- the REST API ----------------------------------------------------------------------------

    def _next_fault(self, to: str | None) -> Fault | None:
        if self.always is not None:
            return self.always
        if to is not None:
            queue = self.faults_for.get(to)
            if queue:
                return queue.pop(0)
        if self.faults:
            return self.faults.popleft()
        return None

    @staticmethod
    def _basic_auth(request: web.Request) -> tuple[str, str] | None:
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            return None
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except ValueError:
            return None
        return (user, password) if sep else None

    @staticmethod
    def _json(
        status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> web.Response:
        return web.Response(
            status=status,
            body=json.dumps(payload).encode(),
            content_type="application/json",
            headers=dict(headers or {}),
        )

    async def _answer_fault(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        if fault.drops:
            if request.transport is not None:
                request.transport.abort()
            # aiohttp notices the closed transport when it writes this and drops it quietly.
            return web.Response(status=204)
        if fault.hangs:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=HANG_SECONDS)
        return web.Response(
            status=fault.status,
            body=fault.body,
            headers={"Content-Type": fault.content_type, **fault.headers},
        )

    def _record(self, request: web.Request, form: Mapping[str, list[str]], answered: int) -> None:
        self.requests.append(
            SeenRequest(
                method=request.method,
                path=request.path,
                headers=dict(request.headers),
                form=form,
                basic_auth=self._basic_auth(request),
                answered=answered,
            )
        )

    async def _create_message(self, request: web.Request) -> web.StreamResponse:
        posted = await request.post()
        form: dict[str, list[str]] = {}
        for key, value in posted.items():
            form.setdefault(key, []).append(value if isinstance(value, str) else str(value))
        fields = {key: values[0] for key, values in form.items()}
        self.attempts.append(fields)

        fault = self._next_fault(fields.get("To"))
        if fault is not None:
            self._record(request, form, fault.status)
            return await self._answer_fault(request, fault)

        response = self._process(request, fields)
        self._record(request, form, response.status)
        return response

    def _process(self, request: web.Request, fields: dict[str, str]) -> web.Response:
        if self._basic_auth(request) != (self.account_sid, self.auth_token):
            return self._json(
                401,
                {
                    **twilio_error_body(401, 20003, "Authenticate"),
                    "detail": "Your AccountSid or AuthToken was incorrect.",
                },
                {"WWW-Authenticate": 'Basic realm="Twilio API"'},
            )
        if request.match_info["account_sid"] != self.account_sid:
            return self._json(
                404, twilio_error_body(404, 20404, f"The requested resource {request.path} was not found")
            )
        to = fields.get("To", "")
        sender = fields.get("From", "")
        service = fields.get("MessagingServiceSid", "")
        body = fields.get("Body", "")
        if not to:
            return self._json(400, twilio_error_body(400, 21604))
        if not sender and not service:
            return self._json(400, twilio_error_body(400, 21603))
        if not body and "MediaUrl" not in fields and "ContentSid" not in fields:
            return self._json(400, twilio_error_body(400, 21602))
        if len(body) > _MAX_BODY_CHARS:
            return self._json(400, twilio_error_body(400, 21617))
        if not _E164.fullmatch(to):
            return self._json(
                400, twilio_error_body(400, 21211, f"The 'To' number {to} is not a valid phone number.")
            )

        sid = new_sid("SM")
        now = format_datetime(datetime.now(UTC))
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"
        payload = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender or None,
            "messaging_service_sid": service or None,
            "num_media": "0",
            "num_segments": "0" if service else str(sms_segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {
                "media": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}/Media.json"
            },
            "to": to,
            "uri": uri,
        }
        self.messages.append({**fields, "sid": sid})
        return self._json(201, payload)

    async def _not_found(self, request: web.Request) -> web.Response:
        self._record(request, {}, 404)
        return self._json(
            404, twilio_error_body(404, 20404, f"The requested resource {request.path} was not found")
        )

    # -- webhooks Twilio would send to Loopline ------------------------------------------------------

    def sign(self, url: str, params: FormParams) -> str:
        """``X-Twilio-Signature`` for ``params`` posted to ``url``, computed by the SDK itself."""
        multi = _MultiParams()
        for key, value in _pairs(params):
            multi.setdefault(key, []).append(value)
        signature: str = self._validator.compute_signature(url, multi)
        return signature

    def signed_headers(self, public_url: str, params: FormParams) -> dict[str, str]:
        """Headers (lower-case names) for a form posted to ``public_url``, signed as Twilio would."""
        return {
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": self.sign(public_url, params),
            "user-agent": "TwilioProxy/1.1",
            "i-twilio-idempotency-token": str(uuid.uuid4()),
        }

    def inbound_form(
        self,
        *,
        from_: str,
        to: str,
        body: str,
        message_sid: str | None = None,
        messaging_service_sid: str | None = None,
        num_media: int = 0,
        extra: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """The fields of a realistic inbound-SMS webhook from a UK mobile (all of them signed)."""
        sid = message_sid or new_sid("MM" if num_media else "SM")
        form = {
            "ToCountry": "GB",
            "ToState": "",
            "SmsMessageSid": sid,
            "NumMedia": str(num_media),
            "ToCity": "",
            "FromZip": "",
            "SmsSid": sid,
            "FromState": "",
            "SmsStatus": "received",
            "FromCity": "",
            "Body": body,
            "FromCountry": "GB",
            "To": to,
            "ToZip": "",
            "NumSegments": str(sms_segments(body)) if body else "1",
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": from_,
            "ApiVersion": API_VERSION,
        }
        if messaging_service_sid:
            form["MessagingServiceSid"] = messaging_service_sid
        for n in range(num_media):
            form[f"MediaContentType{n}"] = "image/jpeg"
            form[f"MediaUrl{n}"] = (
                f"https://api.twilio.com/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}/Media/"
                f"{new_sid('ME')}"
            )
        form.update(extra or {})
        return form

    def status_callback_form(
        self, *, message_sid: str, status: str, error_code: str | None = None
    ) -> dict[str, str]:
        """The fields of a status callback for ``message_sid`` (To/From taken from the sent message)."""
        sent = self.message(message_sid) or {}
        form = {"AccountSid": self.account_sid, "ApiVersion": API_VERSION}
        if sent.get("From"):
            form["From"] = sent["From"]
        form |= {"MessageSid": message_sid, "MessageStatus": status}
        if sent.get("MessagingServiceSid"):
            form["MessagingServiceSid"] = sent["MessagingServiceSid"]
        form |= {"SmsSid": message_sid, "SmsStatus": status}
        if sent.get("To"):
            form["To"] = sent["To"]
        if error_code is not None:
            form["ErrorCode"] = error_code
        return form

    async def post_signed(
        self,
        session: aiohttp.ClientSession,
        *,
        public_url: str,
        local_url: str,
        params: FormParams,
        headers: Mapping[str, str] | None = None,
    ) -> int:
        """POST ``params`` to ``local_url`` signed for ``public_url``; return the HTTP status."""
        all_headers = {**self.signed_headers(public_url, params), **(headers or {})}
        async with session.post(local_url, data=encode_form(params), headers=all_headers) as response:
            await response.read()
            return response.status

    async def send_status_callback(
        self,
        session: aiohttp.ClientSession,
        *,
        public_url: str,
        local_url: str,
        message_sid: str,
        status: str,
        error_code: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> int:
        """Play Twilio's status callback for ``message_sid``; return the HTTP status Loopline answered.

        ``public_url`` is what Twilio would call, i.e. the ``StatusCallback`` the message was created
        with (including ``?id=...``); ``local_url`` is where the test server actually listens.
        """
        params = self.status_callback_form(message_sid=message_sid, status=status, error_code=error_code)
        params.update(extra or {})
        return await self.post_signed(session, public_url=public_url, local_url=local_url, params=params)

    async def send_inbound(
        self,
        session: aiohttp.ClientSession,
        *,
        public_url: str,
        local_url: str,
        params: FormParams,
    ) -> tuple[int, bytes]:
        """POST a signed inbound webhook (e.g. from :meth:`inbound_form`); return status and body."""
        async with session.post(
            local_url, data=encode_form(params), headers=self.signed_headers(public_url, params)
        ) as response:
            return response.status, await response.read()
