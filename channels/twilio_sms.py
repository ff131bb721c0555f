"""Twilio Programmable Messaging (SMS) adapter.

Inbound: Twilio POSTs ``application/x-www-form-urlencoded`` webhooks signed with ``X-Twilio-Signature``
(HMAC-SHA1 of the public URL plus the sorted parameters, keyed with the auth token). :meth:`TwilioSms.verify`
checks it with the SDK's own ``RequestValidator``; the web layer answers a verified inbound message with
:data:`EMPTY_TWIML` and sends any reply later over REST.

Outbound: :meth:`TwilioSms.send` uses the real SDK (``Client.messages.create_async``) over an aiohttp-based
HTTP client that enforces a timeout (the SDK's async client has none) and can be pointed at a local fake
(``api_base_url``). Failures come back as the :mod:`channels.errors` tree.

Nothing in this module logs message bodies, phone numbers or credentials.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import aiohttp
from twilio.base.exceptions import TwilioException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from channels.base import DeliveryStatus, HttpRequest, InboundMessage, OutboundMessage, StatusUpdate
from channels.errors import (
    AddressInvalid,
    BadRequest,
    Misconfigured,
    ProviderUnavailable,
    RecipientOptedOut,
    Rejected,
    SendError,
)
from channels.phone import normalise_phone

__all__ = [
    "EMPTY_TWIML",
    "STATUS_MAP",
    "TWIML_CONTENT_TYPE",
    "TwilioSms",
    "classify_twilio_error",
]

#: The webhook answer that tells Twilio "received, no reply" (courier's and Notify's practice).
EMPTY_TWIML: Final = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
TWIML_CONTENT_TYPE: Final = "text/xml"

#: Twilio ``MessageStatus`` -> Loopline status. Anything not listed (``read``, ``partially_delivered``,
#: ``receiving``, ``received``, statuses Twilio adds later) maps to None: "not tracked, ignore".
#: ``canceled`` is terminal for the message (it will never be sent), so it counts as FAILED.
STATUS_MAP: Final[Mapping[str, DeliveryStatus]] = {
    "queued": DeliveryStatus.QUEUED,
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.SENDING,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}

# Twilio error codes (https://www.twilio.com/docs/api/errors) by what Loopline must do about them.
_OPTED_OUT_CODES: Final = frozenset({21610})  # recipient replied STOP
_ADDRESS_INVALID_CODES: Final = frozenset(
    {
        21211,  # invalid 'To' phone number
        21214,  # 'To' phone number cannot be reached
        21612,  # 'To' unroutable / not reachable from this 'From'
        21614,  # 'To' is not SMS-capable (e.g. a landline)
    }
)
_MISCONFIGURED_CODES: Final = frozenset(
    {
        20003,  # authentication failed
        21212,  # invalid 'From' number
        21606,  # 'From' is not an SMS-capable Twilio number
        21659,  # 'From' is not a Twilio number / country mismatch
    }
)
_UNAVAILABLE_CODES: Final = frozenset(
    {
        20429,  # REST API concurrency limit: "safe to retry after backing off"
        21611,  # sender queue full: retry later
    }
)

_FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
_MAX_FORM_FIELDS: Final = 1000  # Twilio sends ~20-50; beyond this it is not Twilio
_OUTBOX_ID: Final = re.compile(r"[0-9]{1,18}")
# A non-empty mapping so the SDK does not fall back to os.environ (``environment or os.environ`` in
# ClientBase): TWILIO_EDGE / TWILIO_REGION would otherwise rewrite the API host name, and mangle a
# local fake's "127.0.0.1" into "127.<edge>.<region>.0.1". Empty values mean "no edge, no region".
_SDK_ENVIRONMENT: Final[Mapping[str, str]] = {"TWILIO_EDGE": "", "TWILIO_REGION": ""}


class _FormParams(dict[str, list[str]]):
    """Parsed form fields with every value kept, in the shape ``RequestValidator`` understands.

    ``RequestValidator.get_values`` calls ``getall()`` if it exists; a plain ``dict[str, list]`` would
    make it hash a list and raise ``TypeError``.
    """

    def getall(self, name: str) -> list[str]:
        return self[name]

    def first(self, name: str) -> str | None:
        values = self.get(name)
        return values[0] if values else None


def _parse_form(body: bytes) -> _FormParams | None:
    """Parse an urlencoded body the way aiohttp's ``request.post()`` does; None if it is not one.

    Blank values are kept (Twilio signs ``Body=`` too). Invalid UTF-8, raw or percent-encoded, becomes
    U+FFFD instead of raising; a signature over the original bytes then simply fails to match.
    """
    text = body.decode("utf-8", errors="replace")
    try:
        fields = parse_qs(
            text,
            keep_blank_values=True,
            encoding="utf-8",
            errors="replace",
            max_num_fields=_MAX_FORM_FIELDS,
        )
    except ValueError:
        return None
    return _FormParams(fields)


def _is_form_request(request: HttpRequest) -> bool:
    content_type = request.header("content-type")
    if content_type is None or not request.body:
        return True  # nothing to contradict the form parse; an empty body is an empty form
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == _FORM_CONTENT_TYPE


def _clean_text(value: str) -> str:
    """Remove NUL: PostgreSQL ``text`` rejects it, and no handset sends it on purpose."""
    return value.replace("\x00", "")


def _with_query_param(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    extra = urlencode({name: value})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


def _outbox_id(url: str) -> int | None:
    try:
        values = parse_qs(urlsplit(url).query).get("id")
    except ValueError:
        return None
    if not values or not _OUTBOX_ID.fullmatch(values[0]):
        return None
    return int(values[0])


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value.strip()):
        return int(value.strip())
    return None


def classify_twilio_error(exc: TwilioException) -> SendError:
    """Map a ``TwilioRestException`` / ``TwilioServiceException`` to Loopline's error tree.

    Both carry ``.status`` (HTTP) and ``.code`` (Twilio code; the HTTP status when the body was not
    JSON). The provider's message is deliberately not copied: Twilio puts the phone number in it.
    """
    status = _int_or_none(getattr(exc, "status", None))
    raw_code = getattr(exc, "code", None)
    code = _int_or_none(raw_code)
    provider_code = str(raw_code) if raw_code is not None else None
    what = f"Twilio answered HTTP {status if status is not None else '?'} with code {provider_code or '-'}"

    if code in _OPTED_OUT_CODES:
        return RecipientOptedOut(f"{what}: recipient has opted out", provider_code=provider_code)
    if code in _ADDRESS_INVALID_CODES:
        return AddressInvalid(f"{what}: recipient cannot receive SMS", provider_code=provider_code)
    if status in (401, 403) or code in _MISCONFIGURED_CODES:
        return Misconfigured(f"{what}: check account, auth token and sender", provider_code=provider_code)
    if status == 429 or code in _UNAVAILABLE_CODES or (status is not None and status >= 500):
        return ProviderUnavailable(f"{what}: try again later", provider_code=provider_code)
    return Rejected(f"{what}: message refused", provider_code=provider_code)


class _LooplineTwilioHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]  # twilio is untyped
    """The SDK's aiohttp client with a default timeout and an optional fixed API origin.

    * ``AsyncTwilioHttpClient.request`` passes its ``timeout`` argument straight to aiohttp and ignores
      the constructor's, and ``create_async`` never passes one: without this, a hung API hangs us.
    * Basic auth goes in as a ready-made ``Authorization`` header instead of ``aiohttp.BasicAuth``.
    * ``base_url`` replaces scheme and host (and prefixes any path) of every SDK URL, keeping the
      SDK's path and query, so the real serialisation, auth and error parsing run against a fake.
    """

    def __init__(self, *, base_url: str | None, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._base = urlsplit(base_url.rstrip("/")) if base_url else None

    def _rewrite(self, url: str) -> str:
        if self._base is None:
            return url
        parts = urlsplit(url)
        return urlunsplit(
            parts._replace(
                scheme=self._base.scheme, netloc=self._base.netloc, path=self._base.path + parts.path
            )
        )

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  # the SDK method this overrides takes it
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        # The SDK would wrap ``auth`` in aiohttp.BasicAuth, deprecated since aiohttp 3.14 (a
        # DeprecationWarning on every send); send the same header without it.
        all_headers = dict(headers or {})
        if auth is not None:
            all_headers["Authorization"] = aiohttp.encode_basic_auth(auth[0], auth[1])
        response: TwilioResponse = await super().request(
            method,
            self._rewrite(url),
            params=params,
            data=data,
            headers=all_headers,
            auth=None,
            timeout=timeout if timeout is not None else self.timeout,
            allow_redirects=allow_redirects,
        )
        return response


class TwilioSms:
    """SMS through Twilio: webhook verification and parsing, REST sending with classified errors.

    Create it anywhere (no I/O, no event loop needed); the HTTP session is created on the first
    :meth:`send` inside the running loop. Call :meth:`close` on shutdown.

    Inbound ``Body`` policy: the text is kept exactly as Twilio sent it, except that NUL characters are
    removed and invalid UTF-8 becomes U+FFFD. In particular a body that *looks* like base64 is **not**
    decoded (nyaruka/courier decodes one heuristically because Twilio has been seen to deliver
    concatenated SMS that way); short answers such as "Test" or "YES1" are valid base64 and decoding
    them would corrupt genuine replies. Twilio reassembles long SMS itself.
    """

    name = "sms"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        status_callback_url: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        api_base_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not account_sid or not auth_token or ":" in account_sid:
            raise ValueError("account_sid and auth_token are required (and the sid has no ':')")
        if bool(from_number) == bool(messaging_service_sid):
            raise ValueError("give exactly one of from_number and messaging_service_sid")
        if not status_callback_url:
            raise ValueError("status_callback_url is required")
        if not timeout > 0:
            raise ValueError("timeout must be positive")
        if api_base_url is not None:
            base = urlsplit(api_base_url)
            if base.scheme not in ("http", "https") or not base.netloc:
                raise ValueError("api_base_url must look like http://host:port")
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._status_callback_url = status_callback_url
        self._from_number = from_number
        self._messaging_service_sid = messaging_service_sid
        self._api_base_url = api_base_url
        self._timeout = timeout
        self._validator = RequestValidator(auth_token)
        self._client: Any = None  # twilio.rest.Client, created lazily inside the event loop

    def __repr__(self) -> str:  # never show the token
        return f"<TwilioSms account={self._account_sid[:6]}…>"

    # -- inbound -------------------------------------------------------------------------------

    def verify(self, request: HttpRequest) -> bool:
        """True if ``X-Twilio-Signature`` matches ``request.url`` (the public URL) and the form body.

        Never raises: a missing header, a non-form body, undecodable bytes or a malformed URL all
        give False.
        """
        signature = request.header("x-twilio-signature")
        if not signature:
            return False  # RequestValidator.compare() would call len(None) and raise TypeError
        if not _is_form_request(request):
            return False
        params = _parse_form(request.body)
        if params is None:
            return False
        try:
            return bool(self._validator.validate(request.url, params, signature))
        except (ValueError, TypeError, UnicodeError):  # e.g. a non-numeric port in the URL
            return False

    def parse_inbound(self, request: HttpRequest) -> InboundMessage:
        """Turn a verified inbound-message webhook into an :class:`InboundMessage`.

        ``sender`` is ``From`` in E.164 (short codes and alphanumeric senders unchanged), ``text`` is
        ``Body`` (empty for media-only MMS; see the class docstring for the exact policy),
        ``provider_id`` is ``MessageSid``, the idempotency key.
        """
        form = self._form(request)
        sender = form.first("From")
        if not sender or not sender.strip():
            raise BadRequest("missing field From")
        message_sid = form.first("MessageSid") or form.first("SmsMessageSid")
        if not message_sid or not message_sid.strip():
            raise BadRequest("missing field MessageSid")
        return InboundMessage(
            channel=self.name,
            sender=normalise_phone(_clean_text(sender)),
            text=_clean_text(form.first("Body") or ""),
            provider_id=_clean_text(message_sid.strip()),
        )

    def parse_status(self, request: HttpRequest) -> StatusUpdate:
        """Turn a verified status callback into a :class:`StatusUpdate`.

        ``outbox_id`` comes from the ``id`` query parameter that :meth:`send` put in the callback URL,
        so a callback can be matched even if we crashed before storing the returned sid.
        """
        form = self._form(request)
        outbox_id = _outbox_id(request.url)
        message_sid = (form.first("MessageSid") or form.first("SmsSid") or "").strip() or None
        if outbox_id is None and message_sid is None:
            raise BadRequest("missing field MessageSid (and no id in the callback URL)")
        raw_status = (form.first("MessageStatus") or form.first("SmsStatus") or "").strip().lower()
        error_code = (form.first("ErrorCode") or "").strip() or None
        return StatusUpdate(
            outbox_id=outbox_id,
            provider_id=_clean_text(message_sid) if message_sid else None,
            status=STATUS_MAP.get(raw_status),
            error_code=_clean_text(error_code) if error_code else None,
        )

    def _form(self, request: HttpRequest) -> _FormParams:
        if not _is_form_request(request):
            raise BadRequest("body is not application/x-www-form-urlencoded")
        form = _parse_form(request.body)
        if form is None:
            raise BadRequest("body is not valid form data")
        return form

    # -- outbound ------------------------------------------------------------------------------

    def _get_client(self) -> Any:
        if self._client is None:
            http_client = _LooplineTwilioHttpClient(base_url=self._api_base_url, timeout=self._timeout)
            self._client = Client(
                self._account_sid,
                self._auth_token,
                http_client=http_client,
                environment=dict(_SDK_ENVIRONMENT),
            )
        return self._client

    def status_callback_for(self, outbox_id: int) -> str:
        """The ``StatusCallback`` URL for one message: the configured URL plus ``id=<outbox id>``."""
        return _with_query_param(self._status_callback_url, "id", str(outbox_id))

    async def send(self, message: OutboundMessage) -> str:
        """Create the message at Twilio and return its sid (``SM…``).

        Buttons are ignored: the engine renders choices into the text for SMS. Raises a
        :class:`channels.errors.SendError` subclass; only ``ProviderUnavailable`` is retryable.
        A 2xx answer without a readable sid is reported as ``ProviderUnavailable``: retrying may
        duplicate the SMS, which is the at-least-once behaviour the Messages API forces anyway.
        """
        client = self._get_client()
        sender: dict[str, str] = (
            {"from_": self._from_number}
            if self._from_number
            else {"messaging_service_sid": self._messaging_service_sid or ""}
        )
        try:
            async with asyncio.timeout(self._timeout):
                instance = await client.messages.create_async(
                    to=message.to,
                    body=message.text,
                    status_callback=self.status_callback_for(message.id),
                    **sender,
                )
        except TwilioException as exc:
            raise classify_twilio_error(exc) from exc
        except TimeoutError as exc:
            raise ProviderUnavailable(f"Twilio did not answer within {self._timeout:g}s") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ProviderUnavailable(f"cannot reach Twilio: {type(exc).__name__}") from exc
        except (ValueError, AttributeError) as exc:  # 2xx with a body that is not a JSON object
            raise ProviderUnavailable("Twilio answered with an unreadable body") from exc
        sid = getattr(instance, "sid", None)
        if not isinstance(sid, str) or not sid:
            raise ProviderUnavailable("Twilio answered without a message sid")
        return sid

    async def close(self) -> None:
        """Close the HTTP session, if one was opened. Safe to call more than once."""
        client, self._client = self._client, None
        if client is not None:
            await client.http_client.close()
