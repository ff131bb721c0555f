"""The outbox sender against the fake Twilio API: retries, permanent errors, opt-outs, crashes."""

from __future__ import annotations

import pytest

from bots.serve import report_interrupted_sends
from store import outbox
from tests.fakes.twilio_api import Fault
from tests.harness import RESIDENT, Harness


async def _statuses(server: Harness) -> list[tuple[str, int, str | None]]:
    rows = await server.rows("SELECT status, attempts, error_code FROM outbox ORDER BY id")
    return [(r.status, r.attempts, r.error_code) for r in rows]


async def test_a_429_is_retried_with_backoff_and_the_message_is_sent_once(server: Harness) -> None:
    await server.text("hello")
    server.twilio.faults.append(Fault.too_many_requests())

    assert await server.send_all() == []
    assert await _statuses(server) == [("queued", 1, "20429")]
    [row] = await server.rows("SELECT next_attempt_at FROM outbox")
    assert row.next_attempt_at is not None

    server.clock.advance(seconds=2)
    sent = await server.send_all()

    assert len(sent) == 1
    assert await _statuses(server) == [("sent", 2, "20429")]


async def test_a_server_error_and_a_timeout_are_retried(server: Harness) -> None:
    await server.text("hello")
    server.twilio.faults.extend([Fault.server_error(), Fault.hang()])

    await server.send_all()
    server.clock.advance(seconds=2)
    await server.send_all()  # hangs past our 2 s timeout
    assert await _statuses(server) == [("queued", 2, None)]
    server.clock.advance(seconds=5)
    sent = await server.send_all()

    assert len(sent) == 1
    assert (await _statuses(server))[0][:2] == ("sent", 3)


async def test_an_outage_ends_in_failed_after_the_attempt_limit(server: Harness) -> None:
    await server.text("hello")
    server.twilio.always = Fault.server_error(503)

    for _ in range(6):
        await server.send_all()
        server.clock.advance(minutes=2)

    [row] = await server.rows("SELECT status, attempts, error FROM outbox")
    assert (row.status, row.attempts) == ("failed", 5)
    assert row.error.startswith("gave up after 5 attempts")
    assert len(server.twilio.attempts) == 5


async def test_twilio_saying_the_resident_unsubscribed_opts_them_out_everywhere(server: Harness) -> None:
    await server.text("PARKS")
    server.twilio.faults_for[RESIDENT] = [Fault.opted_out()]

    sent = await server.send_all()

    assert len(sent) == 1  # the intro was refused; the question was already in flight beside it
    rows = await server.rows("SELECT status, error_code, error FROM outbox ORDER BY id")
    assert (rows[0].status, rows[0].error_code) == ("failed", "21610")
    [resident] = await server.rows("SELECT opted_out_at FROM residents")
    assert resident.opted_out_at is not None


async def test_an_invalid_number_is_recorded_and_never_retried(server: Harness) -> None:
    await server.text("hello")
    server.twilio.faults.append(Fault.invalid_number())

    await server.send_all()
    server.clock.advance(minutes=5)
    await server.send_all()

    assert await _statuses(server) == [("failed", 1, "21211")]
    [address] = await server.rows("SELECT invalid_reason FROM addresses")
    assert address.invalid_reason == "21211"
    await server.text("hello again")
    await server.send_all()
    assert [r[0] for r in await _statuses(server)] == ["failed", "skipped"]


async def test_replies_to_residents_go_before_bulk_messages(server: Harness) -> None:
    await server.conversation("hello")  # the resident exists
    [resident] = await server.rows(
        "SELECT r.id AS resident_id, a.id AS address_id FROM residents r "
        "JOIN addresses a ON a.resident_id = r.id"
    )
    bulk = [
        outbox.NewMessage(
            resident.resident_id,
            resident.address_id,
            "sms",
            f"bulk {n}",
            "you_said_we_did",
            priority=outbox.PRIORITY_BULK,
        )
        for n in range(3)
    ]
    async with server.loopline.db.sessions() as session, session.begin():
        await outbox.enqueue(session, bulk, now=server.clock())
    await server.text("PARKS")

    sent = await server.send_all()

    assert [m["Body"][:4] for m in sent] == ["Park", "How ", "bulk", "bulk", "bulk"]


async def test_a_message_being_sent_when_the_process_died_is_reported_not_resent(server: Harness) -> None:
    await server.text("hello")
    async with server.loopline.db.sessions() as session, session.begin():
        claimed = await outbox.claim_due(session, now=server.clock(), channels=["sms"])
    assert len(claimed) == 1  # ...and then the process is killed before Twilio answers

    interrupted = await report_interrupted_sends(server.loopline)
    sent = await server.send_all()

    assert interrupted == [claimed[0].id]
    assert sent == []
    assert await _statuses(server) == [("interrupted", 1, None)]


async def test_a_clean_stop_puts_messages_still_waiting_for_the_rate_limit_back_in_the_queue(
    server: Harness,
) -> None:
    import asyncio

    from bots.sender import TokenBucket

    await server.text("PARKS")  # two replies
    sender = server.loopline.sender
    sender._buckets["sms"] = TokenBucket(0.5, burst=2.0)  # the 2-segment intro now, the question later
    draining = asyncio.create_task(sender.drain_once())
    for _ in range(100):
        if len(server.twilio.messages) == 1:
            break
        await asyncio.sleep(0.02)
    draining.cancel()
    with pytest.raises(asyncio.CancelledError):
        await draining

    assert await sender.release_unsent() == 1
    rows = await server.rows("SELECT status, attempts FROM outbox ORDER BY id")
    assert [(r.status, r.attempts) for r in rows] == [("sending", 1), ("queued", 0)]
