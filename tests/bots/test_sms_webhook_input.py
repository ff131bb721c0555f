"""Bad and unusual input on the SMS webhook: a clear answer, nothing lost, nothing crashes."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.conftest import PUBLIC_URL
from tests.fakes.twilio_api import encode_form
from tests.harness import COUNCIL_NUMBER, RESIDENT, Harness

SMS_PATH = "/webhooks/twilio/sms"


async def _post(server: Harness, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with server.http.post(server.local_url + SMS_PATH, data=body, headers=headers) as response:
        return response.status, await response.text()


async def _nothing_written(server: Harness) -> None:
    for table in ("inbound_messages", "residents", "addresses", "outbox", "responses"):
        assert await server.count(table) == 0, table


async def test_a_request_without_a_signature_is_refused_and_nothing_is_written(server: Harness) -> None:
    form = server.twilio.inbound_form(from_=RESIDENT, to=COUNCIL_NUMBER, body="PARKS")

    status, _ = await _post(server, encode_form(form), {"content-type": "application/x-www-form-urlencoded"})

    assert status == 403
    await _nothing_written(server)


async def test_a_request_signed_with_the_wrong_token_is_refused(server: Harness) -> None:
    from tests.fakes.twilio_api import FakeTwilio

    forger = FakeTwilio(auth_token="0" * 32)
    form = server.twilio.inbound_form(from_=RESIDENT, to=COUNCIL_NUMBER, body="PARKS")

    status, _ = await _post(server, encode_form(form), forger.signed_headers(PUBLIC_URL + SMS_PATH, form))

    assert status == 403
    await _nothing_written(server)


async def test_a_request_whose_body_was_changed_after_signing_is_refused(server: Harness) -> None:
    form = server.twilio.inbound_form(from_=RESIDENT, to=COUNCIL_NUMBER, body="PARKS")
    headers = server.twilio.signed_headers(PUBLIC_URL + SMS_PATH, form)

    status, _ = await _post(server, encode_form({**form, "Body": "STOP"}), headers)

    assert status == 403
    await _nothing_written(server)


async def test_a_request_signed_for_the_local_url_instead_of_the_public_one_is_refused(
    server: Harness,
) -> None:
    form = server.twilio.inbound_form(from_=RESIDENT, to=COUNCIL_NUMBER, body="PARKS")
    headers = server.twilio.signed_headers(server.local_url + SMS_PATH, form)

    status, _ = await _post(server, encode_form(form), headers)

    assert status == 403


async def test_the_same_message_delivered_twice_is_handled_once(server: Harness) -> None:
    assert await server.text("PARKS", sid="SM" + "1" * 32) == 200
    assert await server.text("PARKS", sid="SM" + "1" * 32) == 200

    assert await server.count("inbound_messages") == 1
    assert await server.count("outbox") == 2  # the intro and the first question, once


async def test_the_same_message_delivered_twice_at_once_is_handled_once(server: Harness) -> None:
    sid = "SM" + "2" * 32
    statuses = await asyncio.gather(*(server.text("PARKS", sid=sid) for _ in range(5)))

    assert statuses == [200] * 5
    assert await server.count("inbound_messages") == 1
    assert await server.count("responses") == 1
    assert await server.count("outbox") == 2


async def test_two_first_messages_from_a_new_number_at_once_make_one_resident(server: Harness) -> None:
    statuses = await asyncio.gather(server.text("hello"), server.text("hi there"))

    assert statuses == [200, 200]
    assert await server.count("residents") == 1
    assert await server.count("inbound_messages") == 2


async def test_a_10kb_message_is_accepted_and_answered(server: Harness) -> None:
    await server.conversation("PARKS", "1", "1")
    body = "The play area needs work. " * 400  # 10,400 characters, beyond Twilio's own 1,600

    replies = await server.conversation(body)

    assert replies == ["Sorry, that is too long. Please keep it under 500 characters. Or reply SKIP."]
    [stored] = await server.rows("SELECT body FROM inbound_messages ORDER BY id DESC LIMIT 1")
    assert stored.body == body


async def test_emoji_welsh_and_other_non_gsm_text_is_stored_exactly(server: Harness) -> None:
    await server.conversation("PARKS", "1", "2")
    answer = "Mae'r siglenni'n ŵyr 🙈 — 👨‍👩‍👧 €[]{}^~\\| שלום"

    await server.conversation(answer)

    [stored] = await server.rows("SELECT value FROM answers WHERE question = 'why'")
    assert stored.value == answer


async def test_nul_bytes_and_invalid_utf8_do_not_crash_the_server(server: Harness) -> None:
    form = server.twilio.inbound_form(from_=RESIDENT, to=COUNCIL_NUMBER, body="PARKS")
    raw = encode_form(form).replace(b"Body=PARKS", b"Body=PA%00RKS%FF")
    # Twilio would sign the decoded values; sign what the server will decode
    signed = {**form, "Body": "PA\x00RKS\ufffd"}
    status, _ = await _post(server, raw, server.twilio.signed_headers(PUBLIC_URL + SMS_PATH, signed))

    assert status == 200
    [stored] = await server.rows("SELECT body FROM inbound_messages")
    assert stored.body == "PARKS\ufffd"  # NUL removed (PostgreSQL refuses it), bad byte replaced


async def test_a_form_without_from_gets_400_and_nothing_is_written(server: Harness) -> None:
    form = server.twilio.inbound_form(from_=RESIDENT, to=COUNCIL_NUMBER, body="PARKS")
    del form["From"]

    status, text = await _post(
        server, encode_form(form), server.twilio.signed_headers(PUBLIC_URL + SMS_PATH, form)
    )

    assert status == 400
    assert "From" in text
    await _nothing_written(server)


async def test_a_form_without_a_body_is_treated_as_an_empty_message(server: Harness) -> None:
    form = server.twilio.inbound_form(from_=RESIDENT, to=COUNCIL_NUMBER, body="")
    del form["Body"]

    status, text = await _post(
        server, encode_form(form), server.twilio.signed_headers(PUBLIC_URL + SMS_PATH, form)
    )

    assert status == 200
    assert text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    assert [m["Body"] for m in await server.send_all()] == [
        "Text PARKS for Parks and open spaces to take part."
    ]


async def test_a_json_body_is_refused(server: Harness) -> None:
    status, _ = await _post(
        server, b'{"Body": "PARKS"}', {"content-type": "application/json", "x-twilio-signature": "abc"}
    )

    assert status == 403
    await _nothing_written(server)


async def test_a_2mb_body_is_refused_as_too_large(server: Harness) -> None:
    status, _ = await _post(
        server,
        b"Body=" + b"a" * 2_000_000,
        {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": "abc"},
    )

    assert status == 413


async def test_unknown_extra_parameters_are_signed_and_accepted(server: Harness) -> None:
    status = await server.text("PARKS", extra={"SomethingNew": "x", "OptOutType": ""})

    assert status == 200
    assert await server.count("inbound_messages") == 1


async def test_health_check_reports_the_outbox(server: Harness) -> None:
    await server.text("PARKS")

    async with aiohttp.ClientSession() as http, http.get(server.local_url + "/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"ok": True, "outbox": {"queued": 2}}
