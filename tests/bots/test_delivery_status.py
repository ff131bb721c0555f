"""Twilio status callbacks: signed, matched by our id, and never moving a status backwards."""

from __future__ import annotations

from tests.conftest import PUBLIC_URL
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import Harness

STATUS_PATH = "/webhooks/twilio/status"


async def _send_one(server: Harness) -> dict[str, str]:
    await server.text("hello")
    [message] = await server.send_all()
    return message


async def _callback(
    server: Harness,
    message: dict[str, str],
    status: str,
    error_code: str | None = None,
    twilio: FakeTwilio | None = None,
) -> int:
    return await (twilio or server.twilio).send_status_callback(
        server.http,
        public_url=message["StatusCallback"],
        local_url=server.local_url + message["StatusCallback"].removeprefix(PUBLIC_URL),
        message_sid=message["sid"],
        status=status,
        error_code=error_code,
    )


async def _status(server: Harness) -> str:
    [row] = await server.rows("SELECT status FROM outbox")
    return str(row.status)


async def test_delivery_is_tracked_to_the_handset(server: Harness) -> None:
    message = await _send_one(server)

    assert await _callback(server, message, "sent") == 200
    assert await _status(server) == "sent"
    assert await _callback(server, message, "delivered") == 200
    assert await _status(server) == "delivered"


async def test_a_late_sent_callback_never_overwrites_delivered(server: Harness) -> None:
    message = await _send_one(server)

    await _callback(server, message, "delivered")
    await _callback(server, message, "sent")
    await _callback(server, message, "delivered")

    assert await _status(server) == "delivered"


async def test_a_forged_callback_is_refused_and_changes_nothing(server: Harness) -> None:
    message = await _send_one(server)

    status = await _callback(server, message, "failed", twilio=FakeTwilio(auth_token="1" * 32))

    assert status == 403
    assert await _status(server) == "sent"


async def test_a_callback_for_an_unknown_message_is_acknowledged(server: Harness) -> None:
    message = await _send_one(server)
    unknown = {**message, "StatusCallback": f"{PUBLIC_URL}{STATUS_PATH}?id=99999"}

    assert await _callback(server, unknown, "delivered") == 200
    assert await _status(server) == "sent"


async def test_statuses_we_do_not_track_are_ignored(server: Harness) -> None:
    message = await _send_one(server)

    assert await _callback(server, message, "read") == 200
    assert await _callback(server, message, "huh") == 200
    assert await _status(server) == "sent"


async def test_an_undelivered_callback_with_21610_opts_the_resident_out(server: Harness) -> None:
    message = await _send_one(server)

    await _callback(server, message, "undelivered", error_code="21610")

    assert await _status(server) == "undelivered"
    [resident] = await server.rows("SELECT opted_out_at FROM residents")
    assert resident.opted_out_at is not None
