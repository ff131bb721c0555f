"""Telegram operations: long polling without a public URL, webhook set-up, and the simulator."""

from __future__ import annotations

import asyncio
import io
import sys

import pytest

from bots.cli import main
from bots.telegram_polling import poll
from tests.fakes.telegram_api import FakeTelegram, update_text
from tests.harness import TELEGRAM_SECRET, Harness

CHAT = 900000002


async def test_polling_handles_updates_once_and_confirms_them_after_storing(tg_server: Harness) -> None:
    fake = tg_server.telegram
    assert fake is not None
    telegram = tg_server.loopline.telegram
    assert telegram is not None
    fake.push_update(update_text(CHAT, "PARKS", update_id=100))
    fake.push_update(update_text(CHAT, "2", update_id=101))

    polling = asyncio.create_task(poll(tg_server.loopline.services(), telegram, long_poll_seconds=1))
    for _ in range(100):
        if await tg_server.count("inbound_messages") == 2:
            break
        await asyncio.sleep(0.05)
    fake.push_update(update_text(CHAT, "2", update_id=101))  # Telegram resends after a restart: ignored
    await asyncio.sleep(0.3)
    polling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await polling

    assert await tg_server.count("inbound_messages") == 2
    answers = await tg_server.rows("SELECT question, value FROM answers")
    assert [tuple(a) for a in answers] == [("visits", "monthly")]
    offsets = [call.params.get("offset") for call in fake.calls("getUpdates")]
    assert "102" in [str(o) for o in offsets]  # confirmed only after both were stored


def _telegram_env(monkeypatch: pytest.MonkeyPatch, fake: FakeTelegram, database_url: str) -> None:
    monkeypatch.setenv("LOOPLINE_DATABASE_URL", database_url)
    monkeypatch.setenv("LOOPLINE_PUBLIC_URL", "https://engage.example.gov.uk")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", fake.token)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", TELEGRAM_SECRET)
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", fake.base_url)
    monkeypatch.setenv("LOOPLINE_LOG_LEVEL", "WARNING")


async def test_set_webhook_registers_the_public_url_with_the_secret(
    fake_telegram: FakeTelegram,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _telegram_env(monkeypatch, fake_telegram, database_url)

    assert await asyncio.to_thread(main, ["telegram", "set-webhook"]) == 0
    assert "https://engage.example.gov.uk/webhooks/telegram" in capsys.readouterr().out
    webhook = fake_telegram.webhook
    assert webhook["url"] == "https://engage.example.gov.uk/webhooks/telegram"
    assert webhook["secret_token"] == TELEGRAM_SECRET
    assert set(webhook["allowed_updates"]) == {
        "message",
        "edited_message",
        "callback_query",
        "my_chat_member",
    }

    fake_telegram.set_webhook_error("Connection refused")
    assert await asyncio.to_thread(main, ["telegram", "info"]) == 0
    info = capsys.readouterr().out
    assert "pending_update_count" in info
    assert "Connection refused" in info


def test_the_telegram_simulator_shows_buttons_as_numbered_choices(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    from tests.conftest import EXAMPLE_SURVEY

    monkeypatch.setenv("LOOPLINE_DATABASE_URL", database_url)
    monkeypatch.setenv("LOOPLINE_LOG_LEVEL", "WARNING")
    text = EXAMPLE_SURVEY.read_text().replace("opens: 2026-11-01", "opens: 2020-01-01")
    survey = tmp_path / "parks.yaml"  # type: ignore[operator]
    survey.write_text(text.replace("closes: 2026-12-31", "closes: 2099-12-31"))
    assert main(["survey", "load", str(survey)]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("/start parks-2026\n3\n1\n/stop\n"))

    assert main(["chat", "--telegram"]) == 0

    out = capsys.readouterr().out
    assert "How often do you visit a park?\n  [1] Every week\n  [2] Every month\n  [3] Rarely or never" in out
    assert "  ✓ Rarely or never" in out
    assert "You won't get any more messages" in out
