"""You Said, We Did: from a card to the residents who took part, on their own channel, and back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from store import outbox
from store.cards import CardError
from tests.fakes.telegram_api import update_button, update_text
from tests.harness import Harness

CARD = """\
title: Play areas
survey: parks-2026
you_said: Play areas need repairs and the swings at Elm Park are broken.
we_did: We will renew the Elm Park swings in January.
cannot_change: We can't increase the total budget, which was set in February.
status: planned
lead_contact: parks@example.gov.uk
"""
AMY, BEN, CAL = "+447700900101", "+447700900102", "+447700900103"
TG_CHAT = 900000042


async def _took_part(server: Harness) -> None:
    await server.conversation("PARKS", "1", "1", "Broken swings", sender=AMY)
    await server.conversation("PARKS", "2", "4", sender=BEN)
    await server.conversation("PARKS", "3", "5", sender=CAL)
    assert server.telegram is not None
    for text in ("PARKS", "1", "2", "Bins overflowing"):
        assert await server.telegram_update(update_text(TG_CHAT, text)) == 200
        await server.send_all()


async def _approved_card(server: Harness, text: str = CARD) -> int:
    closing = server.loopline.closing
    card_id = await closing.create(text, "play-areas.yaml", author="priya.comms")
    await closing.approve(card_id, approver="tom.comms")
    return card_id


async def _statuses(server: Harness) -> list[tuple[str, str, str | None]]:
    rows = await server.rows(
        "SELECT channel, status, error FROM outbox WHERE send_id IS NOT NULL ORDER BY id"
    )
    return [(r.channel, r.status, r.error) for r in rows]


async def test_the_author_cannot_approve_their_own_card(tg_server: Harness) -> None:
    closing = tg_server.loopline.closing
    card_id = await closing.create(CARD, "play-areas.yaml", author="priya.comms")

    with pytest.raises(CardError, match="author cannot approve their own card"):
        await closing.approve(card_id, approver="priya.comms")
    with pytest.raises(CardError, match="only an approved card can be scheduled"):
        await closing.schedule(card_id, at=tg_server.clock(), actor="priya.comms")
    actions = await tg_server.rows("SELECT actor, action FROM audit_log ORDER BY id")
    assert [tuple(a) for a in actions] == [("priya.comms", "created")]


async def test_everyone_who_took_part_hears_back_on_their_channel_and_answers_the_pulse(
    tg_server: Harness,
) -> None:
    await _took_part(tg_server)
    await tg_server.conversation("STOP", sender=CAL)
    card_id = await _approved_card(tg_server)
    closing = tg_server.loopline.closing

    preview = await closing.preview(card_id)
    assert "Recipients before opt-outs and contact budgets: 4 (sms 3, telegram 1)" in preview
    await closing.schedule(card_id, at=tg_server.clock(), actor="tom.comms")
    assert await closing.send_due() == 1
    assert await closing.send_due() == 0  # planned once, whatever wakes it again

    sms_before, tg = len(tg_server.twilio.messages), tg_server.telegram
    assert tg is not None
    tg_before = len(tg.sent)
    await tg_server.send_all()
    sms = tg_server.twilio.messages[sms_before:]
    assert sorted(m["To"] for m in sms) == [AMY, BEN]
    assert "We will renew the Elm Park swings in January." in sms[0]["Body"]
    assert "Reply 1 Yes, 2 Partly, 3 No" in sms[0]["Body"]
    [telegram_message] = tg.sent[tg_before:]
    labels = [b["text"] for row in telegram_message["reply_markup"]["inline_keyboard"] for b in row]
    assert labels == ["Yes", "Partly", "No"]
    assert sorted(await _statuses(tg_server)) == [
        ("sms", "sent", None),
        ("sms", "sent", None),
        ("sms", "skipped", "opted_out"),
        ("telegram", "sent", None),
    ]

    replies = await tg_server.conversation("2", sender=AMY)
    assert replies == ["Thank you for telling us. It helps us do better next time."]
    button = next(
        b for row in telegram_message["reply_markup"]["inline_keyboard"] for b in row if b["text"] == "Yes"
    )
    press = update_button(
        TG_CHAT,
        button["callback_data"],
        message_id=telegram_message["message_id"],
        message_text=telegram_message["text"],
    )
    assert await tg_server.telegram_update(press) == 200
    pulses = await tg_server.rows("SELECT answer FROM pulses ORDER BY answer")
    assert [p.answer for p in pulses] == ["partly", "yes"]
    status = await closing.status(card_id)
    assert "sent 3" in status
    assert "skipped: opted_out 1" in status
    assert "Did this answer your concern? partly 1, yes 1" in status
    assert "  (no ward): partly 1, yes 1" in status  # the parks survey asks no ward question


async def test_a_card_can_be_for_those_whose_answers_match(tg_server: Harness) -> None:
    await _took_part(tg_server)
    low_ratings = CARD + "audience:\n  max_rating: {rating: 2}\n"
    card_id = await _approved_card(tg_server, low_ratings)

    preview = await tg_server.loopline.closing.preview(card_id)

    assert "Recipients before opt-outs and contact budgets: 2 (sms 1, telegram 1)" in preview


async def test_a_send_due_at_night_waits_for_the_morning_and_is_never_dropped(server: Harness) -> None:
    await server.conversation("PARKS", "1", "1", "Broken swings", sender=AMY)
    card_id = await _approved_card(server)
    night = datetime(2026, 11, 22, 22, 30, tzinfo=UTC)  # 22:30 in London

    _, starts = await server.loopline.closing.schedule(card_id, at=night, actor="tom.comms")
    server.clock.now = night
    await server.loopline.closing.send_due()

    assert starts == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert await server.send_all() == []
    server.clock.now = datetime(2026, 11, 23, 8, 1, tzinfo=UTC)
    assert [m["To"] for m in await server.send_all()] == [AMY]


async def test_a_resident_who_texts_stop_while_their_message_waits_gets_nothing(server: Harness) -> None:
    await server.conversation("PARKS", "1", "1", "Broken swings", sender=AMY)
    card_id = await _approved_card(server)
    night = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)
    await server.loopline.closing.schedule(card_id, at=night, actor="tom.comms")
    server.clock.now = night
    await server.loopline.closing.send_due()

    await server.conversation("STOP", sender=AMY)
    server.clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    sent = await server.send_all()

    assert all("Elm Park" not in m["Body"] for m in sent)
    assert await _statuses(server) == [("sms", "skipped", "opted_out")]


async def test_the_contact_budget_holds_back_a_fifth_message_in_thirty_days(server: Harness) -> None:
    await server.conversation("PARKS", "1", "1", "Broken swings", sender=AMY)
    [who] = await server.rows("SELECT a.resident_id, a.id FROM addresses a")
    earlier = [
        outbox.NewMessage(who[0], who[1], "sms", f"earlier {n}", "you_said_we_did", outbox.PRIORITY_BULK)
        for n in range(4)
    ]
    async with server.loopline.db.sessions() as session, session.begin():
        await outbox.enqueue(session, earlier, now=server.clock() - timedelta(days=3))
    card_id = await _approved_card(server)

    await server.loopline.closing.schedule(card_id, at=server.clock(), actor="tom.comms")
    await server.loopline.closing.send_due()

    assert await _statuses(server) == [("sms", "skipped", "contact_budget")]


async def test_cancelling_stops_the_messages_not_yet_sent(server: Harness) -> None:
    await server.conversation("PARKS", "1", "1", "Broken swings", sender=AMY)
    card_id = await _approved_card(server)
    await server.loopline.closing.schedule(card_id, at=server.clock() + timedelta(hours=1), actor="tom.comms")

    stopped = await server.loopline.closing.cancel(card_id, actor="tom.comms")
    server.clock.advance(hours=2)

    assert stopped == 0
    assert await server.loopline.closing.send_due() == 0
    actions = [a.action for a in await server.rows("SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["created", "approved", "scheduled", "cancelled"]


async def test_the_published_page_suppresses_small_counts(server: Harness) -> None:
    await server.conversation("PARKS", "1", "1", "Broken swings", sender=AMY)
    await _approved_card(server)

    async with server.http.get(f"{server.local_url}/you-said-we-did") as response:
        page = await response.text()
    async with server.http.get(f"{server.local_url}/you-said-we-did?format=json") as response:
        data = await response.json()

    assert '<html lang="en">' in page
    assert "We will renew the Elm Park swings in January." in page
    assert "What we couldn't change, and why" in page
    assert "We can&#39;t increase the total budget" in page  # card text is escaped
    [card] = data["cards"]
    assert card["participants"] == "fewer than 10"
    assert json.dumps(card).count("+447700") == 0


async def test_on_telegram_the_cards_public_page_is_a_link_button(tg_server: Harness) -> None:
    await _took_part(tg_server)
    card_id = await _approved_card(tg_server, CARD + "public_url: https://example.gov.uk/you-said-we-did\n")
    await tg_server.loopline.closing.schedule(card_id, at=tg_server.clock(), actor="tom.comms")
    await tg_server.loopline.closing.send_due()
    assert tg_server.telegram is not None
    before = len(tg_server.telegram.sent)

    await tg_server.send_all()

    [message] = tg_server.telegram.sent[before:]
    rows = message["reply_markup"]["inline_keyboard"]
    assert [b["text"] for b in rows[0]] == ["Yes", "Partly", "No"]
    assert rows[-1] == [{"text": "Play areas", "url": "https://example.gov.uk/you-said-we-did"}]
