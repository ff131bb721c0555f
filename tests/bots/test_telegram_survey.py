"""Residents take the same surveys in Telegram: buttons, deep links, language, opt-outs, one person."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from channels.telegram import decode_button
from tests.fakes.telegram_api import (
    FakeTelegram,
    Fault,
    update_blocked,
    update_button,
    update_contact,
    update_group_text,
    update_photo,
    update_text,
)
from tests.harness import Harness

CHAT = 900000001


def _telegram(server: Harness) -> FakeTelegram:
    assert server.telegram is not None
    return server.telegram


async def _say(server: Harness, text: str, **options: Any) -> list[dict[str, Any]]:
    """The resident types ``text``; returns the messages the bot sent back."""
    fake = _telegram(server)
    before = len(fake.sent)
    assert await server.telegram_update(update_text(CHAT, text, **options)) == 200
    await server.send_all()
    server.clock.advance(seconds=30)
    return fake.sent[before:]


async def _press(server: Harness, message: dict[str, Any], label: str) -> list[dict[str, Any]]:
    """The resident taps the button labelled ``label`` on ``message``; returns what the bot sent."""
    fake = _telegram(server)
    buttons = [b for row in message["reply_markup"]["inline_keyboard"] for b in row]
    [button] = [b for b in buttons if b["text"] == label]
    before = len(fake.sent)
    update = update_button(
        CHAT, button["callback_data"], message_id=message["message_id"], message_text=message["text"]
    )
    assert await server.telegram_update(update) == 200
    await server.send_all()
    await server.loopline.services().background.finish()
    server.clock.advance(seconds=30)
    return fake.sent[before:]


def _labels(message: dict[str, Any]) -> list[str]:
    return [b["text"] for row in message["reply_markup"]["inline_keyboard"] for b in row]


async def _settle(server: Harness) -> None:
    for _ in range(50):  # the button acknowledgement runs in the background after the 200
        if _telegram(server).callback_answers:
            return
        await asyncio.sleep(0.02)


async def test_a_resident_takes_the_parks_survey_by_tapping_buttons(tg_server: Harness) -> None:
    intro, question, offer = await _say(tg_server, "/start parks-2026")
    assert offer["text"].startswith("Do you also text us? Share your phone number")
    assert offer["params"]["reply_markup"]["keyboard"][0][0]["request_contact"] is True

    assert "Help us decide how to spend next year's play-area budget" in intro["text"]
    assert question["text"] == "How often do you visit a park?"
    assert _labels(question) == ["Every week", "Every month", "Rarely or never"]

    [rating] = await _press(tg_server, question, "Every month")
    await _settle(tg_server)
    assert _labels(rating) == ["1", "2", "3", "4", "5"]
    fake = _telegram(tg_server)
    assert fake.callback_answers, "the press was acknowledged"
    assert fake.message(str(CHAT), question["message_id"])["text"].endswith("✓ Every month")

    [why] = await _press(tg_server, rating, "2")
    assert why["text"].startswith("What should we fix first?")
    [thanks] = await _say(tg_server, "More bins please")
    assert thanks["text"].startswith("Thank you, your answers are saved")

    answers = await tg_server.rows("SELECT question, value FROM answers ORDER BY id")
    assert [tuple(a) for a in answers] == [
        ("visits", "monthly"),
        ("rating", "2"),
        ("why", "More bins please"),
    ]


async def test_the_same_answers_by_sms_and_by_telegram_are_stored_identically(tg_server: Harness) -> None:
    await tg_server.conversation("PARKS", "weekly", "1", "Broken gate")
    _, question = await _say(tg_server, "PARKS")
    [rating] = await _press(tg_server, question, "Every week")
    [why] = await _press(tg_server, rating, "1")
    await _say(tg_server, "Broken gate")
    assert why["text"].startswith("What should we fix first?")

    rows = await tg_server.rows(
        "SELECT r.channel, a.question, a.value, a.status FROM answers a "
        "JOIN responses r ON r.id = a.response_id ORDER BY a.id"
    )
    by_channel: dict[str, list[tuple[str, str, str]]] = {}
    for channel, question_id, value, status in rows:
        by_channel.setdefault(channel, []).append((question_id, value, status))
    assert by_channel["sms"] == by_channel["telegram"]
    assert len(by_channel["sms"]) == 3


async def test_typed_answers_still_work_in_telegram(tg_server: Harness) -> None:
    await _say(tg_server, "PARKS")
    [rating] = await _say(tg_server, "2")

    assert rating["text"].startswith("How would you rate")


async def test_a_stale_or_forged_button_press_changes_nothing(tg_server: Harness) -> None:
    _, question = await _say(tg_server, "PARKS")
    await _press(tg_server, question, "Every week")

    again = await _press(tg_server, question, "Rarely or never")  # the old question, pressed again
    forged = update_button(CHAT, "a|rating|5", message_id=question["message_id"])  # not offered there
    assert await tg_server.telegram_update(forged) == 200
    unknown_message = update_button(CHAT, "a|rating|4", message_id=999)
    assert await tg_server.telegram_update(unknown_message) == 200
    garbage = update_button(CHAT, "not-ours", message_id=question["message_id"])
    assert await tg_server.telegram_update(garbage) == 200
    await tg_server.send_all()
    await tg_server.loopline.services().background.finish()

    assert again == []
    answers = await tg_server.rows("SELECT question, value FROM answers ORDER BY id")
    assert [tuple(a) for a in answers] == [("visits", "weekly")]
    await _settle(tg_server)
    assert decode_button("a|rating|5") == ("rating", "5")


async def test_the_same_update_delivered_twice_and_at_once_is_handled_once(tg_server: Harness) -> None:
    update = update_text(CHAT, "PARKS", update_id=5000)

    statuses = await asyncio.gather(*(tg_server.telegram_update(update) for _ in range(4)))
    assert statuses == [200] * 4
    lower = update_text(CHAT, "hello", update_id=12)  # lower ids are never refused
    assert await tg_server.telegram_update(lower) == 200

    assert await tg_server.count("inbound_messages") == 2
    assert await tg_server.count("responses") == 1


async def test_a_wrong_or_missing_secret_is_refused_and_nothing_is_written(tg_server: Harness) -> None:
    assert (
        await tg_server.telegram_update(update_text(CHAT, "PARKS"), secret="wrong-secret-0123456789") == 403
    )
    assert await tg_server.telegram_update(update_text(CHAT, "PARKS"), secret=None) == 403

    assert await tg_server.count("inbound_messages") == 0
    assert await tg_server.count("residents") == 0


async def test_malformed_json_gets_400_and_a_long_message_is_fine(tg_server: Harness) -> None:
    async with tg_server.http.post(
        f"{tg_server.local_url}/webhooks/telegram",
        data=b"{not json",
        headers={
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": "loopline-test-secret-0123456789",
        },
    ) as response:
        assert response.status == 400
    replies = await _say(tg_server, "x" * 5000)

    assert len(replies) == 1  # the menu of open surveys


async def test_photos_get_a_polite_reply_and_group_chats_are_ignored(tg_server: Harness) -> None:
    fake = _telegram(tg_server)
    assert await tg_server.telegram_update(update_photo(CHAT)) == 200
    assert await tg_server.telegram_update(update_group_text(-100123, "PARKS")) == 200
    await tg_server.send_all()

    assert [m["text"] for m in fake.sent] == [
        "Sorry, I can only read typed messages. Please type your answer."
    ]


async def test_stop_then_start_in_telegram(tg_server: Harness) -> None:
    await _say(tg_server, "PARKS")
    [confirmation] = await _say(tg_server, "/stop")
    assert confirmation["text"].startswith("You won't get any more messages")
    assert await _say(tg_server, "PARKS") == []

    welcome, menu = await _say(tg_server, "/start")

    assert welcome["text"].startswith("Welcome back")
    assert menu["text"] == "Text PARKS for Parks and open spaces to take part."


async def test_blocking_the_bot_opts_the_resident_out(tg_server: Harness) -> None:
    await _say(tg_server, "hello")
    assert await tg_server.telegram_update(update_blocked(CHAT)) == 200

    [resident] = await tg_server.rows("SELECT opted_out_at FROM residents")
    assert resident.opted_out_at is not None


async def test_a_403_blocked_on_sending_opts_the_resident_out(tg_server: Harness) -> None:
    _telegram(tg_server).faults.append(Fault.blocked().on("sendMessage"))

    assert await _say(tg_server, "hello") == []

    [resident] = await tg_server.rows("SELECT opted_out_at FROM residents")
    assert resident.opted_out_at is not None


async def test_a_429_with_retry_after_is_honoured(tg_server: Harness) -> None:
    _telegram(tg_server).faults.append(Fault.retry_after(7).on("sendMessage"))

    assert await _say(tg_server, "hello") == []
    [row] = await tg_server.rows("SELECT status, next_attempt_at FROM outbox")
    assert row.status == "queued"
    tg_server.clock.advance(seconds=3)
    assert await tg_server.send_all() == []  # still inside retry_after
    tg_server.clock.advance(seconds=10)
    await tg_server.send_all()
    assert [m["text"] for m in _telegram(tg_server).sent][-1].startswith("Text PARKS")


async def test_the_app_language_picks_welsh_and_language_switches_it(tg_server: Harness) -> None:
    _, question = await _say(tg_server, "PARKS", language_code="cy")
    assert question["text"] == "Pa mor aml ydych chi'n ymweld â pharc?"
    assert _labels(question) == ["Bob wythnos", "Bob mis", "Anaml neu byth"]

    [choose] = await _say(tg_server, "/language")
    [again] = await _press(tg_server, choose, "English")
    assert again["text"] == "How often do you visit a park?"


async def test_sharing_a_phone_number_makes_telegram_and_sms_one_person(tg_server: Harness) -> None:
    await tg_server.conversation("hello", sender="+447700900123")  # known by SMS
    await _say(tg_server, "hi")
    assert await tg_server.telegram_update(update_contact(CHAT, "447700900123")) == 200
    await tg_server.send_all()

    rows = await tg_server.rows("SELECT channel, resident_id FROM addresses ORDER BY id")
    assert {r.channel for r in rows} == {"sms", "telegram"}
    assert len({r.resident_id for r in rows}) == 1
    await _say(tg_server, "/stop")
    assert await tg_server.conversation("PARKS", sender="+447700900123") == []  # STOP applies everywhere


async def test_someone_elses_contact_links_nothing(tg_server: Harness) -> None:
    await tg_server.conversation("hello", sender="+447700900123")
    await _say(tg_server, "hi")
    assert await tg_server.telegram_update(update_contact(CHAT, "447700900123", own=False)) == 200

    rows = await tg_server.rows("SELECT resident_id FROM addresses")
    assert len({r.resident_id for r in rows}) == 2


async def test_buttons_fit_telegrams_64_byte_limit(tg_server: Harness) -> None:
    _, question = await _say(tg_server, "PARKS")

    for row in question["reply_markup"]["inline_keyboard"]:
        for button in row:
            assert len(button["callback_data"].encode()) <= 64
    assert json.loads(json.dumps(question["reply_markup"]))  # well-formed
