"""The Twilio SMS adapter, exercised with the real twilio SDK against FakeTwilio.

Webhook requests are signed with the SDK's own ``RequestValidator.compute_signature`` (via
``FakeTwilio.sign``), never with hand-rolled HMAC. Phone numbers are Ofcom drama numbers.
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.request_validator import RequestValidator

from channels.base import Button, DeliveryStatus, HttpRequest, OutboundMessage
from channels.errors import (
    AddressInvalid,
    BadRequest,
    Misconfigured,
    ProviderUnavailable,
    RecipientOptedOut,
    Rejected,
    SendError,
)
from channels.phone import is_phone_number, normalise_phone
from channels.simulator import Simulator
from channels.twilio_sms import EMPTY_TWIML, TWIML_CONTENT_TYPE, TwilioSms
from tests.fakes.twilio_api import FakeTwilio, Fault, FormParams, encode_form

PUBLIC = "https://loopline.example.gov.uk"
INBOUND_URL = f"{PUBLIC}/webhooks/twilio/sms"
STATUS_URL = f"{PUBLIC}/webhooks/twilio/status"
COUNCIL = "+447700900000"
RESIDENT = "+447700900123"
NEIGHBOUR = "+447700900456"
SERVICE_SID = "MG" + "ab" * 16


# -- helpers and fixtures ---------------------------------------------------------------------------


def signed(
    fake: FakeTwilio, params: FormParams, *, url: str = INBOUND_URL, body: bytes | None = None
) -> HttpRequest:
    """An HttpRequest as the web layer would build it: public URL, lower-case headers, raw body."""
    return HttpRequest(
        url=url,
        headers=fake.signed_headers(url, params),
        body=encode_form(params) if body is None else body,
    )


def verifier(fake: FakeTwilio) -> TwilioSms:
    return TwilioSms(
        account_sid=fake.account_sid,
        auth_token=fake.auth_token,
        status_callback_url=STATUS_URL,
        from_number=COUNCIL,
    )


def message(
    to: str = RESIDENT, text: str = "Were your bins collected this week? Reply YES or NO", id: int = 42
) -> OutboundMessage:
    return OutboundMessage(id=id, to=to, text=text)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio() as server:
        yield server


@pytest.fixture
async def sms(fake: FakeTwilio) -> AsyncIterator[TwilioSms]:
    adapter = TwilioSms(
        account_sid=fake.account_sid,
        auth_token=fake.auth_token,
        status_callback_url=STATUS_URL,
        from_number=COUNCIL,
        api_base_url=fake.base_url,
        timeout=2.0,
    )
    yield adapter
    await adapter.close()


# -- verify ---------------------------------------------------------------------------------------------


def test_a_request_signed_with_our_auth_token_is_accepted(fake: FakeTwilio) -> None:
    form = fake.inbound_form(from_=RESIDENT, to=COUNCIL, body="YES")
    assert verifier(fake).verify(signed(fake, form))


def test_the_sdk_known_answer_vector_is_accepted() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    adapter = TwilioSms(
        account_sid="AC1", auth_token="12345", status_callback_url=STATUS_URL, from_number=COUNCIL
    )
    request = HttpRequest(
        url="https://mycompany.com/myapp.php?foo=1&bar=2",
        headers={"x-twilio-signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
        body=encode_form(params),
    )
    assert adapter.verify(request)


def test_a_request_without_a_signature_header_is_rejected_not_crashed(fake: FakeTwilio) -> None:
    form = fake.inbound_form(from_=RESIDENT, to=COUNCIL, body="YES")
    request = HttpRequest(
        url=INBOUND_URL, headers={"content-type": "application/x-www-form-urlencoded"}, body=encode_form(form)
    )
    assert verifier(fake).verify(request) is False


def test_an_empty_signature_header_is_rejected(fake: FakeTwilio) -> None:
    form = fake.inbound_form(from_=RESIDENT, to=COUNCIL, body="YES")
    request = HttpRequest(url=INBOUND_URL, headers={"x-twilio-signature": ""}, body=encode_form(form))
    assert verifier(fake).verify(request) is False


def test_a_signature_made_with_another_auth_token_is_rejected(fake: FakeTwilio) -> None:
    forger = FakeTwilio(account_sid=fake.account_sid, auth_token="0" * 32)
    form = forger.inbound_form(from_=RESIDENT, to=COUNCIL, body="YES")
    assert verifier(fake).verify(signed(forger, form)) is False


def test_a_tampered_body_is_rejected(fake: FakeTwilio) -> None:
    form = fake.inbound_form(from_=RESIDENT, to=COUNCIL, body="NO")
    request = signed(fake, form, body=encode_form({**form, "Body": "YES"}))
    assert verifier(fake).verify(request) is False


def test_a_signature_for_the_local_url_is_rejected_when_the_public_one_is_configured(
    fake: FakeTwilio,
) -> None:
    form = fake.inbound_form(from_=RESIDENT, to=COUNCIL, body="YES")
    local = signed(fake, form, url="http://127.0.0.1:8080/webhooks/twilio/sms")
    assert (
        verifier(fake).verify(HttpRequest(url=INBOUND_URL, headers=local.headers, body=local.body)) is False
    )


def test_the_public_https_url_with_query_string_and_percent_encoding_is_what_is_signed(
    fake: FakeTwilio,
) -> None:
    url = f"{PUBLIC}/webhooks/twilio/sms?ward=Ll%C5%B7n%20North&v=2"
    form = fake.inbound_form(from_=RESIDENT, to=COUNCIL, body="Diolch")
    adapter = verifier(fake)
    assert adapter.verify(signed(fake, form, url=url))
    decoded = signed(fake, form, url=url)
    assert (
        adapter.verify(
            HttpRequest(url=url.replace("%C5%B7", "ŷ"), headers=decoded.headers, body=decoded.body)
        )
        is False
    )


def test_the_signature_holds_with_or_without_the_default_port(fake: FakeTwilio) -> None:
    form = fake.inbound_form(from_=RESIDENT, to=COUNCIL, body="YES")
    with_port = signed(fake, form, url="https://loopline.example.gov.uk:443/webhooks/twilio/sms")
    assert verifier(fake).verify(HttpRequest(url=INBOUND_URL, headers=with_port.headers, body=with_port.body))


def test_unknown_extra_parameters_still_validate(fake: FakeTwilio) -> None:
    form = fake.inbound_form(
        from_=RESIDENT, to=COUNCIL, body="YES", extra={"OptOutType": "", "AddOns": '{"status":"successful"}'}
    )
    assert verifier(fake).verify(signed(fake, form))


def test_repeated_parameter_names_still_validate(fake: FakeTwilio) -> None:
    pairs = [*fake.inbound_form(from_=RESIDENT, to=COUNCIL, body="YES").items(), ("Tag", "b"), ("Tag", "a")]
    assert verifier(fake).verify(signed(fake, pairs))


def test_a_json_body_is_rejected_even_if_signed(fake: FakeTwilio) -> None:
    body = b'{"From": "+447700900123", "Body": "YES"}'
    request = HttpRequest(
        url=INBOUND_URL,
        headers={"content-type": "application/json", "x-twilio-signature": fake.sign(INBOUND_URL, {})},
        body=body,
    )
    assert verifier(fake).verify(request) is False


@pytest.mark.parametrize("body", [b"Body=\xff\xfe&From=%2B447700900123", b"%%%&&&==", b"\x00" * 16, b"a=%ZZ"])
def test_garbage_bodies_are_rejected_without_raising(fake: FakeTwilio, body: bytes) -> None:
    request = HttpRequest(url=INBOUND_URL, headers={"x-twilio-signature": "bm9wZQ=="}, body=body)
    assert verifier(fake).verify(request) is False


def test_a_malformed_public_url_is_rejected_without_raising(fake: FakeTwilio) -> None:
    request = HttpRequest(
        url="https://loopline.example.gov.uk:notaport/sms", headers={"x-twilio-signature": "x"}, body=b""
    )
    assert verifier(fake).verify(request) is False


# -- parse_inbound ----------------------------------------------------------------------------------


def test_a_realistic_inbound_sms_becomes_an_inbound_message(fake: FakeTwilio) -> None:
    form = fake.inbound_form(from_=RESIDENT, to=COUNCIL, body="Yes, the bins were collected on Tuesday")
    inbound = verifier(fake).parse_inbound(signed(fake, form))
    assert inbound.channel == "sms"
    assert inbound.sender == RESIDENT
    assert inbound.text == "Yes, the bins were collected on Tuesday"
    assert inbound.provider_id == form["MessageSid"]


def test_a_national_format_sender_is_stored_as_e164(fake: FakeTwilio) -> None:
    form = fake.inbound_form(from_="07700 900456", to=COUNCIL, body="NO")
    assert verifier(fake).parse_inbound(signed(fake, form)).sender == NEIGHBOUR


@pytest.mark.parametrize("sender", ["81234", "Twilio", "whatsapp:+447700900123"])
def test_short_codes_and_alphanumeric_senders_are_kept_as_sent(fake: FakeTwilio, sender: str) -> None:
    form = fake.inbound_form(from_=sender, to=COUNCIL, body="hello")
    assert verifier(fake).parse_inbound(signed(fake, form)).sender == sender


@pytest.mark.parametrize("missing", ["From", "MessageSid"])
def test_a_missing_field_is_a_bad_request_that_names_it(fake: FakeTwilio, missing: str) -> None:
    form = fake.inbound_form(from_=RESIDENT, to=COUNCIL, body="YES")
    del form[missing]
    if missing == "MessageSid":
        del form["SmsMessageSid"]
    with pytest.raises(BadRequest, match=f"missing field {missing}"):
        verifier(fake).parse_inbound(signed(fake, form))


def test_a_media_only_mms_has_empty_text(fake: FakeTwilio) -> None:
    form = fake.inbound_form(from_=RESIDENT, to=COUNCIL, body="", num_media=1)
    assert verifier(fake).verify(signed(fake, form))
    assert verifier(fake).parse_inbound(signed(fake, form)).text == ""
    del form["Body"]
    assert verifier(fake).parse_inbound(signed(fake, form)).text == ""


def test_nul_bytes_are_stripped_and_invalid_utf8_is_replaced(fake: FakeTwilio) -> None:
    body = b"From=%2B447700900123&MessageSid=SM" + b"1" * 32 + b"&Body=ok%00go%FF%ED%A0%80!"
    inbound = verifier(fake).parse_inbound(HttpRequest(url=INBOUND_URL, headers={}, body=body))
    assert "\x00" not in inbound.text
    assert inbound.text.startswith("okgo\ufffd")
    assert inbound.text.endswith("!")
    inbound.text.encode("utf-8")  # no lone surrogates: storable anywhere


@pytest.mark.parametrize(
    "text",
    [
        "👍🏽 yes",
        "👨‍👩‍👧 family of three",
        "Diolch yn fawr! ŵ ŷ Ŵ Ŷ",
        "€ [ ] { } ^ ~ \\ |",
        "مرحبا، نعم",
        "cafe\u0301 e\u0300",
        "line one\r\nline two\ttab",
    ],
)
def test_unicode_survives_byte_exact(fake: FakeTwilio, text: str) -> None:
    form = fake.inbound_form(from_=RESIDENT, to=COUNCIL, body=text)
    request = signed(fake, form)
    assert verifier(fake).verify(request)
    assert verifier(fake).parse_inbound(request).text == text


def test_a_10kb_body_is_parsed_whole(fake: FakeTwilio) -> None:
    text = "The pothole on Station Road is getting worse. " * 225
    assert len(text) > 10_000
    form = fake.inbound_form(from_=RESIDENT, to=COUNCIL, body=text)
    request = signed(fake, form)
    assert verifier(fake).verify(request)
    assert verifier(fake).parse_inbound(request).text == text


def test_a_base64_looking_body_is_kept_as_sent(fake: FakeTwilio) -> None:
    for text in ("SGVsbG8gd29ybGQ=", "Test", "YES1"):
        form = fake.inbound_form(from_=RESIDENT, to=COUNCIL, body=text)
        assert verifier(fake).parse_inbound(signed(fake, form)).text == text


def test_a_json_body_cannot_be_parsed_as_an_inbound_sms(fake: FakeTwilio) -> None:
    request = HttpRequest(
        url=INBOUND_URL, headers={"content-type": "application/json"}, body=b'{"From": "x"}'
    )
    with pytest.raises(BadRequest):
        verifier(fake).parse_inbound(request)


def test_the_empty_twiml_acknowledgement_is_what_twilio_expects() -> None:
    assert EMPTY_TWIML == b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
    assert TWIML_CONTENT_TYPE == "text/xml"


# -- parse_status -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("twilio_status", "expected"),
    [
        ("queued", DeliveryStatus.QUEUED),
        ("accepted", DeliveryStatus.QUEUED),
        ("scheduled", DeliveryStatus.QUEUED),
        ("sending", DeliveryStatus.SENDING),
        ("sent", DeliveryStatus.SENT),
        ("delivered", DeliveryStatus.DELIVERED),
        ("undelivered", DeliveryStatus.UNDELIVERED),
        ("failed", DeliveryStatus.FAILED),
        ("canceled", DeliveryStatus.FAILED),
        ("read", None),
        ("partially_delivered", None),
        ("receiving", None),
        ("received", None),
        ("huh", None),
        ("", None),
    ],
)
def test_twilio_statuses_map_to_ours(
    fake: FakeTwilio, twilio_status: str, expected: DeliveryStatus | None
) -> None:
    url = f"{STATUS_URL}?id=42"
    form = fake.status_callback_form(message_sid="SM" + "c" * 32, status=twilio_status)
    update = verifier(fake).parse_status(signed(fake, form, url=url))
    assert update.status == expected


def test_a_status_callback_carries_our_outbox_id_the_sid_and_the_error_code(fake: FakeTwilio) -> None:
    url = f"{STATUS_URL}?id=42"
    form = fake.status_callback_form(message_sid="SM" + "c" * 32, status="undelivered", error_code="30003")
    request = signed(fake, form, url=url)
    assert verifier(fake).verify(request)
    update = verifier(fake).parse_status(request)
    assert update.outbox_id == 42
    assert update.provider_id == "SM" + "c" * 32
    assert update.status is DeliveryStatus.UNDELIVERED
    assert update.error_code == "30003"


def test_a_blank_error_code_is_no_error(fake: FakeTwilio) -> None:
    form = fake.status_callback_form(message_sid="SM" + "c" * 32, status="delivered", error_code="")
    assert verifier(fake).parse_status(signed(fake, form, url=f"{STATUS_URL}?id=1")).error_code is None


@pytest.mark.parametrize("query", ["", "?id=", "?id=abc", "?id=-1", "?id=1.5", "?other=3"])
def test_a_missing_or_odd_outbox_id_is_none(fake: FakeTwilio, query: str) -> None:
    form = fake.status_callback_form(message_sid="SM" + "c" * 32, status="sent")
    update = verifier(fake).parse_status(signed(fake, form, url=STATUS_URL + query))
    assert update.outbox_id is None
    assert update.provider_id == "SM" + "c" * 32


def test_a_status_callback_with_neither_id_nor_sid_is_a_bad_request(fake: FakeTwilio) -> None:
    form = {"MessageStatus": "delivered", "AccountSid": fake.account_sid}
    with pytest.raises(BadRequest, match="MessageSid"):
        verifier(fake).parse_status(signed(fake, form, url=STATUS_URL))


async def test_a_status_callback_played_by_the_fake_verifies_and_parses(
    fake: FakeTwilio, sms: TwilioSms, aiohttp_server: Any
) -> None:
    sid = await sms.send(message(id=7))
    seen: list[HttpRequest] = []

    async def status_hook(request: web.Request) -> web.Response:
        public_url = PUBLIC + request.path_qs  # what a reverse proxy setup would reconstruct
        seen.append(
            HttpRequest(
                url=public_url,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=await request.read(),
            )
        )
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/webhooks/twilio/status", status_hook)
    server = await aiohttp_server(app)
    callback = fake.message(sid)
    assert callback is not None
    async with aiohttp.ClientSession() as session:
        status = await fake.send_status_callback(
            session,
            public_url=callback["StatusCallback"],
            local_url=str(server.make_url("/webhooks/twilio/status?id=7")),
            message_sid=sid,
            status="delivered",
        )
    assert status == 204
    assert sms.verify(seen[0])
    update = sms.parse_status(seen[0])
    assert (update.outbox_id, update.provider_id, update.status) == (7, sid, DeliveryStatus.DELIVERED)


# -- send ---------------------------------------------------------------------------------------------


async def test_sending_returns_the_sid_and_twilio_sees_auth_recipient_body_sender_and_callback(
    fake: FakeTwilio, sms: TwilioSms
) -> None:
    sid = await sms.send(message(id=42))
    assert sid.startswith("SM")
    assert len(sid) == 34
    [sent] = fake.messages
    assert sent["sid"] == sid
    assert sent["To"] == RESIDENT
    assert sent["From"] == COUNCIL
    assert sent["Body"] == "Were your bins collected this week? Reply YES or NO"
    assert sent["StatusCallback"] == f"{STATUS_URL}?id=42"
    assert "MessagingServiceSid" not in sent
    assert fake.requests[-1].basic_auth == (fake.account_sid, fake.auth_token)
    assert fake.requests[-1].path == f"/2010-04-01/Accounts/{fake.account_sid}/Messages.json"


async def test_a_callback_url_that_already_has_a_query_gets_our_id_appended(fake: FakeTwilio) -> None:
    adapter = TwilioSms(
        account_sid=fake.account_sid,
        auth_token=fake.auth_token,
        status_callback_url=f"{STATUS_URL}?council=north",
        from_number=COUNCIL,
        api_base_url=fake.base_url,
    )
    try:
        await adapter.send(message(id=9))
    finally:
        await adapter.close()
    assert fake.messages[0]["StatusCallback"] == f"{STATUS_URL}?council=north&id=9"


async def test_a_messaging_service_sends_without_a_from_number(fake: FakeTwilio) -> None:
    adapter = TwilioSms(
        account_sid=fake.account_sid,
        auth_token=fake.auth_token,
        status_callback_url=STATUS_URL,
        messaging_service_sid=SERVICE_SID,
        api_base_url=fake.base_url,
    )
    try:
        sid = await adapter.send(message())
    finally:
        await adapter.close()
    [sent] = fake.messages
    assert sent["sid"] == sid
    assert sent["MessagingServiceSid"] == SERVICE_SID
    assert "From" not in sent


async def test_buttons_are_not_sent_over_sms(fake: FakeTwilio, sms: TwilioSms) -> None:
    choice = OutboundMessage(
        id=1, to=RESIDENT, text="Rate it 1-3", buttons=(Button("Good", "1"), Button("Bad", "3"))
    )
    await sms.send(choice)
    assert fake.messages[0]["Body"] == "Rate it 1-3"
    assert set(fake.messages[0]) == {"To", "From", "Body", "StatusCallback", "sid"}


@pytest.mark.parametrize(
    ("fault", "error", "code"),
    [
        pytest.param(Fault.too_many_requests(), ProviderUnavailable, "20429", id="429 too many requests"),
        pytest.param(Fault.server_error(), ProviderUnavailable, "20500", id="500 server error"),
        pytest.param(Fault.server_error(503), ProviderUnavailable, "20500", id="503 unavailable"),
        pytest.param(Fault.html(502), ProviderUnavailable, "502", id="HTML 502 page"),
        pytest.param(Fault.html(429), ProviderUnavailable, "429", id="HTML 429 page"),
        pytest.param(Fault.opted_out(), RecipientOptedOut, "21610", id="21610 opted out"),
        pytest.param(Fault.invalid_number(), AddressInvalid, "21211", id="21211 invalid number"),
        pytest.param(Fault.not_sms_capable(), AddressInvalid, "21614", id="21614 not SMS-capable"),
        pytest.param(Fault.unreachable(), AddressInvalid, "21612", id="21612 unroutable"),
        pytest.param(Fault.auth_failed(), Misconfigured, "20003", id="401 bad credentials"),
        pytest.param(Fault.error(403, 20403, "Forbidden"), Misconfigured, "20403", id="403 forbidden"),
        pytest.param(Fault.error(400, 21617), Rejected, "21617", id="21617 body too long"),
        pytest.param(
            Fault.error(400, 21608, "unverified number on a trial account"),
            Rejected,
            "21608",
            id="21608 trial account",
        ),
        pytest.param(Fault.rfc9457(400, 21610), RecipientOptedOut, "21610", id="RFC 9457 opted out"),
        pytest.param(Fault.rfc9457(429, 20429), ProviderUnavailable, "20429", id="RFC 9457 429"),
        pytest.param(Fault.rfc9457(400, 21211), AddressInvalid, "21211", id="RFC 9457 invalid number"),
        pytest.param(Fault.rfc9457(503, 20503), ProviderUnavailable, "20503", id="RFC 9457 503"),
        pytest.param(Fault.raw(201, b""), ProviderUnavailable, None, id="201 with empty body"),
        pytest.param(
            Fault.raw(201, "<html>not json</html>", "text/html"),
            ProviderUnavailable,
            None,
            id="201 with HTML body",
        ),
        pytest.param(Fault.raw(201, "[1, 2]"), ProviderUnavailable, None, id="201 with JSON list"),
        pytest.param(Fault.disconnect(), ProviderUnavailable, None, id="connection dropped"),
    ],
)
async def test_twilio_failures_are_classified(
    fake: FakeTwilio, sms: TwilioSms, fault: Fault, error: type[SendError], code: str | None
) -> None:
    fake.faults.append(fault)
    with pytest.raises(error) as caught:
        await sms.send(message())
    assert type(caught.value) is error
    assert caught.value.provider_code == code
    assert caught.value.retryable is (error is ProviderUnavailable)
    assert fake.messages == []
    # the fault was one-shot: the adapter (and its session) still works afterwards
    assert (await sms.send(message())).startswith("SM")


async def test_the_sdk_raises_its_rfc9457_exception_for_problem_details_and_we_still_classify_it(
    fake: FakeTwilio, sms: TwilioSms
) -> None:
    fake.faults.extend([Fault.rfc9457(400, 21610), Fault.opted_out()])
    with pytest.raises(RecipientOptedOut) as problem:
        await sms.send(message())
    with pytest.raises(RecipientOptedOut) as classic:
        await sms.send(message())
    assert isinstance(problem.value.__cause__, TwilioServiceException)
    assert isinstance(classic.value.__cause__, TwilioRestException)


async def test_wrong_credentials_are_misconfigured(fake: FakeTwilio) -> None:
    adapter = TwilioSms(
        account_sid=fake.account_sid,
        auth_token="wrong" * 6,
        status_callback_url=STATUS_URL,
        from_number=COUNCIL,
        api_base_url=fake.base_url,
    )
    try:
        with pytest.raises(Misconfigured) as caught:
            await adapter.send(message())
    finally:
        await adapter.close()
    assert caught.value.provider_code == "20003"
    assert fake.requests[-1].answered == 401


async def test_errors_do_not_repeat_the_phone_number_or_the_token(fake: FakeTwilio, sms: TwilioSms) -> None:
    with pytest.raises(AddressInvalid) as caught:
        await sms.send(message(to="07700 900123"))  # the fake insists on E.164, naming the number
    assert "900123" not in str(caught.value)
    assert fake.auth_token not in str(caught.value)
    assert fake.auth_token not in repr(sms)


async def test_a_hung_api_fails_as_unavailable_within_the_timeout(fake: FakeTwilio) -> None:
    adapter = TwilioSms(
        account_sid=fake.account_sid,
        auth_token=fake.auth_token,
        status_callback_url=STATUS_URL,
        from_number=COUNCIL,
        api_base_url=fake.base_url,
        timeout=0.3,
    )
    fake.faults.append(Fault.hang())
    started = time.monotonic()
    try:
        with pytest.raises(ProviderUnavailable):
            await adapter.send(message())
    finally:
        await adapter.close()
    assert 0.25 < time.monotonic() - started < 1.5


async def test_a_refused_connection_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    adapter = TwilioSms(
        account_sid="AC" + "0" * 32,
        auth_token="t" * 32,
        status_callback_url=STATUS_URL,
        from_number=COUNCIL,
        api_base_url=f"http://127.0.0.1:{port}",
        timeout=2.0,
    )
    try:
        with pytest.raises(ProviderUnavailable, match="cannot reach Twilio"):
            await adapter.send(message())
    finally:
        await adapter.close()


async def test_twilio_edge_and_region_in_the_environment_do_not_move_the_api_host(
    fake: FakeTwilio, sms: TwilioSms, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    assert (await sms.send(message())).startswith("SM")
    # white-box: without api_base_url the SDK would otherwise send to api.dublin.ie1.twilio.com
    client = sms._get_client()
    assert client.get_hostname("https://api.twilio.com/2010-04-01/x") == "https://api.twilio.com/2010-04-01/x"


async def test_one_recipient_can_fail_while_the_others_are_sent(fake: FakeTwilio, sms: TwilioSms) -> None:
    fake.faults_for[NEIGHBOUR] = [Fault.opted_out()]
    assert (await sms.send(message(to=RESIDENT, id=1))).startswith("SM")
    with pytest.raises(RecipientOptedOut):
        await sms.send(message(to=NEIGHBOUR, id=2))
    assert (await sms.send(message(to=NEIGHBOUR, id=3))).startswith("SM")
    assert [m["To"] for m in fake.messages] == [RESIDENT, NEIGHBOUR]
    assert len(fake.attempts) == 3


async def test_an_outage_fails_every_send_until_it_ends(fake: FakeTwilio, sms: TwilioSms) -> None:
    fake.always = Fault.server_error(503)
    for n in range(3):
        with pytest.raises(ProviderUnavailable):
            await sms.send(message(id=n))
    fake.always = None
    assert (await sms.send(message(id=99))).startswith("SM")
    assert len(fake.attempts) == 4


async def test_many_concurrent_sends_share_one_client(fake: FakeTwilio, sms: TwilioSms) -> None:
    import asyncio

    sids = await asyncio.gather(*(sms.send(message(id=n)) for n in range(20)))
    assert len(set(sids)) == 20
    assert sorted(m["StatusCallback"] for m in fake.messages) == sorted(
        f"{STATUS_URL}?id={n}" for n in range(20)
    )


async def test_close_is_safe_twice_and_a_later_send_reopens(fake: FakeTwilio, sms: TwilioSms) -> None:
    await sms.close()
    await sms.send(message())
    await sms.close()
    await sms.close()
    assert len(fake.messages) == 1


# -- construction ---------------------------------------------------------------------------------------


def test_the_adapter_can_be_built_outside_an_event_loop() -> None:
    adapter = TwilioSms(
        account_sid="AC1", auth_token="t", status_callback_url=STATUS_URL, from_number=COUNCIL
    )
    assert adapter.name == "sms"


@pytest.mark.parametrize(
    "senders",
    [{}, {"from_number": COUNCIL, "messaging_service_sid": SERVICE_SID}, {"from_number": ""}],
)
def test_exactly_one_sender_is_required(senders: Mapping[str, Any]) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        TwilioSms(account_sid="AC1", auth_token="t", status_callback_url=STATUS_URL, **senders)


def test_the_fake_signs_like_the_sdk(fake: FakeTwilio) -> None:
    params = {"Body": "YES", "From": RESIDENT}
    assert fake.sign(INBOUND_URL, params) == RequestValidator(fake.auth_token).compute_signature(
        INBOUND_URL, params
    )


# -- phone numbers and the simulator ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("07700 900123", RESIDENT),
        (" +44 7700 900123 ", RESIDENT),
        ("0044 7700 900123", RESIDENT),
        ("(07700) 900-123", RESIDENT),
        ("+1 415 867 5309", "+14158675309"),
        ("81234", "81234"),
        ("Twilio", "Twilio"),
        (" CouncilTax ", "CouncilTax"),
        ("tel:+447700900123", "tel:+447700900123"),
        ("", ""),
    ],
)
def test_phone_numbers_are_normalised_to_e164_and_others_kept(raw: str, expected: str) -> None:
    assert normalise_phone(raw) == expected
    assert is_phone_number(raw) is expected.startswith("+")


async def test_the_simulator_keeps_what_it_sends_and_tells_the_screen() -> None:
    shown: list[OutboundMessage] = []
    phone = Simulator(on_message=shown.append)
    first, second = message(id=1), message(id=2, text="Thanks!")
    assert await phone.send(first) == f"{first.to}:1"
    assert await phone.send(second) == f"{second.to}:2"
    assert phone.outbox_seen == [first, second] == shown
    assert phone.name == "sim"
