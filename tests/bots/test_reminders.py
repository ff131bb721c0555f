"""Unfinished surveys: one reminder (never in quiet hours), then expiry with the answers kept."""

from __future__ import annotations

from flows.quiet_hours import QuietHours
from tests.harness import Harness

QUIET = QuietHours.parse("21:00-08:00")


async def _sweep(server: Harness) -> tuple[int, int]:
    return await server.loopline.conversations.sweep(now=server.clock(), quiet_hours=QUIET)


async def test_an_unfinished_survey_gets_one_reminder_then_expires_keeping_its_answers(
    server: Harness,
) -> None:
    await server.conversation("PARKS", "1")

    server.clock.advance(hours=47)
    assert await _sweep(server) == (0, 0)
    server.clock.advance(hours=2)
    assert await _sweep(server) == (1, 0)
    [reminder] = [m["Body"] for m in await server.send_all()]
    assert reminder.startswith(
        "Reminder: you haven't finished Parks and open spaces. Reply to carry on:\nHow would you rate"
    )
    assert await _sweep(server) == (0, 0)

    server.clock.advance(hours=24)
    assert await _sweep(server) == (0, 1)
    [response] = await server.rows("SELECT outcome FROM responses")
    assert response.outcome == "expired"
    assert [tuple(r) for r in await server.rows("SELECT question, value FROM answers")] == [
        ("visits", "weekly")
    ]

    replies = await server.conversation("4")  # too late: a fresh conversation
    assert replies == ["Text PARKS for Parks and open spaces to take part."]


async def test_a_reminder_due_at_night_waits_for_the_morning(server: Harness) -> None:
    server.clock.advance(hours=12)  # 22:00 in London
    await server.conversation("PARKS")

    server.clock.advance(hours=48, minutes=30)  # 22:30 two days later: quiet hours
    assert await _sweep(server) == (0, 0)
    server.clock.advance(hours=10)  # 08:30
    assert await _sweep(server) == (1, 0)


async def test_a_resident_who_replies_is_not_reminded(server: Harness) -> None:
    await server.conversation("PARKS")
    server.clock.advance(hours=40)
    await server.conversation("2")

    server.clock.advance(hours=10)
    assert await _sweep(server) == (0, 0)
