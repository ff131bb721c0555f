"""A You Said, We Did send to 10,000 residents over SMS and Telegram, with the process killed mid-send."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
from collections import Counter
from pathlib import Path

from tests.conftest import EXAMPLE_SURVEY, PUBLIC_URL
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import TELEGRAM_SECRET

RESIDENTS = 10_000
TELEGRAM_SHARE = 3  # one in three took part on Telegram
OPTED_OUT_EVERY = 50

CARD = """\
title: Play areas
survey: parks-2026
you_said: Play areas need repairs.
we_did: We will renew the Elm Park swings in January.
cannot_change: The total budget was set in February.
status: planned
lead_contact: parks@example.gov.uk
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _participants(path: Path) -> None:
    """10,000 residents who completed the parks survey, set-based (as a real survey would leave them)."""
    db = sqlite3.connect(path)
    now = "2026-11-20 10:00:00.000000"
    survey_id = db.execute("SELECT id FROM surveys WHERE slug = 'parks-2026'").fetchone()[0]
    residents = [
        (n, now, now if n % OPTED_OUT_EVERY == 0 else None, '{"session": null, "completed": []}')
        for n in range(1, RESIDENTS + 1)
    ]
    db.executemany(
        "INSERT INTO residents (id, created_at, opted_out_at, state) VALUES (?, ?, ?, ?)", residents
    )
    channel = {n: "telegram" if n % TELEGRAM_SHARE == 0 else "sms" for n in range(1, RESIDENTS + 1)}
    db.executemany(
        "INSERT INTO addresses (resident_id, channel, address, created_at) VALUES (?, ?, ?, ?)",
        [
            (n, channel[n], str(800000000 + n) if channel[n] == "telegram" else f"+4477009{n:05d}", now)
            for n in range(1, RESIDENTS + 1)
        ],
    )
    db.executemany(
        "INSERT INTO responses (survey_id, resident_id, participant, channel, language, started_at, "
        "ended_at, outcome) VALUES (?, ?, ?, ?, 'en', ?, ?, 'completed')",
        [(survey_id, n, f"p{n:06d}", channel[n], now, now) for n in range(1, RESIDENTS + 1)],
    )
    db.commit()
    db.close()


async def _cli(*args: str, env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bots.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()
    return out.decode()


def _counts(path: Path) -> Counter[str]:
    db = sqlite3.connect(path)
    try:
        return Counter(
            dict(
                db.execute(
                    "SELECT status, count(*) FROM outbox WHERE send_id IS NOT NULL GROUP BY status"
                ).fetchall()
            )
        )
    finally:
        db.close()


async def test_a_send_killed_midway_resumes_and_nobody_gets_two_messages(tmp_path: Path) -> None:
    path = tmp_path / "loopline.db"
    async with FakeTwilio() as twilio, FakeTelegram() as telegram:
        env = {
            **{
                k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "TWILIO_", "TELEGRAM_"))
            },
            "LOOPLINE_DATABASE_URL": f"sqlite:///{path}",
            "LOOPLINE_PUBLIC_URL": PUBLIC_URL,
            "LOOPLINE_QUIET_HOURS": "00:00-00:00",  # none: the test must not wait for the morning
            "LOOPLINE_LOG_LEVEL": "WARNING",
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": twilio.auth_token,
            "TWILIO_FROM_NUMBER": "+447700900000",
            "TWILIO_API_BASE_URL": twilio.base_url,
            "TWILIO_SEGMENTS_PER_SECOND": "5000",
            "TELEGRAM_BOT_TOKEN": telegram.token,
            "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
            "TELEGRAM_API_BASE_URL": telegram.base_url,
            "TELEGRAM_MESSAGES_PER_SECOND": "5000",
            "TELEGRAM_PER_CHAT_SECONDS": "0",
        }
        await _cli("survey", "load", str(EXAMPLE_SURVEY), env=env)
        _participants(path)
        card = tmp_path / "card.yaml"
        card.write_text(CARD)
        await _cli("yswd", "create", str(card), "--as", "priya.comms", env=env)
        await _cli("yswd", "approve", "1", "--as", "tom.comms", env=env)
        await _cli("yswd", "schedule", "1", "--at", "2020-01-01 10:00", "--as", "tom.comms", env=env)

        async def serve() -> asyncio.subprocess.Process:
            return await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bots.cli",
                "serve",
                "--port",
                str(_free_port()),
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )

        first = await serve()
        for _ in range(600):
            if len(twilio.attempts) + len(telegram.sent) >= 3000:
                break
            await asyncio.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        await first.wait()
        killed_at = len(twilio.attempts) + len(telegram.sent)
        assert 0 < killed_at < RESIDENTS, "the kill must land mid-send"

        second = await serve()
        try:
            for _ in range(1200):
                counts = _counts(path)
                if counts and not counts.get("queued") and not counts.get("sending"):
                    break
                await asyncio.sleep(0.1)
        finally:
            second.send_signal(signal.SIGTERM)
            await second.wait()

    received = Counter(m["To"] for m in twilio.messages) + Counter(str(m["chat_id"]) for m in telegram.sent)
    opted_out = RESIDENTS // OPTED_OUT_EVERY
    counts = _counts(path)
    assert max(received.values()) == 1, "nobody gets the card twice"
    assert counts["skipped"] == opted_out
    assert not any(
        f"+4477009{n:05d}" in received or str(800000000 + n) in received
        for n in range(OPTED_OUT_EVERY, RESIDENTS + 1, OPTED_OUT_EVERY)
    )
    assert counts["sent"] + counts.get("interrupted", 0) == RESIDENTS - opted_out
    assert counts.get("interrupted", 0) <= 100  # only what was in flight at the kill; reported, not resent
    assert len(received) >= counts["sent"]
