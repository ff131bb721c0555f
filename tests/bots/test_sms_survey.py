"""A resident takes a survey by SMS, end to end: signed webhooks in, real SDK sends out."""

from __future__ import annotations

from tests.harness import RESIDENT, Harness


async def test_a_resident_completes_the_parks_survey_by_text(server: Harness) -> None:
    replies = await server.conversation("Parks", "2", "1", "The swings are broken")

    assert "Help us decide how to spend next year's play-area budget" in replies[0]
    assert "Reply STOP to stop" in replies[0]
    assert replies[1].startswith("How often do you visit a park?\n1. Every week")
    assert replies[2].startswith("How would you rate your nearest play area?")
    assert replies[3].startswith("What should we fix first?")
    assert replies[4].startswith("Thank you, your answers are saved")
    answers = await server.rows("SELECT question, value, status FROM answers ORDER BY id")
    assert [tuple(a) for a in answers] == [
        ("visits", "monthly", "answered"),
        ("rating", "1", "answered"),
        ("why", "The swings are broken", "answered"),
    ]
    [response] = await server.rows("SELECT channel, outcome FROM responses")
    assert tuple(response) == ("sms", "completed")


async def test_replies_are_sent_from_the_council_number_with_a_status_callback_carrying_our_id(
    server: Harness,
) -> None:
    await server.text("PARKS")
    sent = await server.send_all()

    assert [m["To"] for m in sent] == [RESIDENT, RESIDENT]
    assert all(m["From"] == "+447700900000" for m in sent)
    ids = [row.id for row in await server.rows("SELECT id FROM outbox ORDER BY id")]
    assert [m["StatusCallback"] for m in sent] == [
        f"https://loopline.example.gov.uk/webhooks/twilio/status?id={i}" for i in ids
    ]
    statuses = await server.rows("SELECT status, provider_id FROM outbox ORDER BY id")
    assert [(s.status, s.provider_id) for s in statuses] == [("sent", m["sid"]) for m in sent]


async def test_an_unknown_message_gets_one_short_reply_listing_the_open_surveys(server: Harness) -> None:
    replies = await server.conversation("hello?")

    assert replies == ["Text PARKS for Parks and open spaces to take part."]


async def test_help_gives_the_leads_contact_and_repeats_the_question(server: Harness) -> None:
    replies = await server.conversation("PARKS", "help")

    assert replies[2].startswith("Parks and open spaces is run by Parks team: parks@example.gov.uk.")
    assert "Reply STOP to stop" in replies[2]
    assert replies[3].startswith("How often do you visit a park?")


async def test_a_resident_who_texts_stop_mid_survey_hears_nothing_more_until_start(server: Harness) -> None:
    replies = await server.conversation("PARKS", "1", "STOP", "3", "PARKS")

    assert (
        replies[-1] == "You won't get any more messages from Exampleshire Council. Reply START to join again."
    )
    [resident] = await server.rows("SELECT opted_out_at FROM residents")
    assert resident.opted_out_at is not None
    [response] = await server.rows("SELECT outcome FROM responses")
    assert response.outcome == "stopped"

    replies = await server.conversation("START")
    assert replies[0].startswith("Welcome back")
    [resident] = await server.rows("SELECT opted_out_at FROM residents")
    assert resident.opted_out_at is None


async def test_a_message_queued_before_stop_is_not_sent_after_it(server: Harness) -> None:
    await server.text("PARKS")  # two replies queued, not yet sent
    await server.text("STOP")

    sent = await server.send_all()

    assert [m["Body"] for m in sent] == [
        "You won't get any more messages from Exampleshire Council. Reply START to join again."
    ]
    skipped = await server.rows("SELECT status, error FROM outbox WHERE status = 'skipped'")
    assert [tuple(s) for s in skipped] == [("skipped", "opted_out"), ("skipped", "opted_out")]


async def test_one_resident_is_one_person_whatever_way_the_number_is_written(server: Harness) -> None:
    await server.conversation("PARKS", sender="+447700900123")
    replies = await server.conversation("1", sender="+447700900123")

    assert replies[0].startswith("How would you rate")
    assert await server.count("residents") == 1
