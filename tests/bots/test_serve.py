"""``loopline serve`` as a real process: migrates, listens, answers a resident, stops cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp

from tests.conftest import EXAMPLE_SURVEY, PUBLIC_URL
from tests.fakes.twilio_api import FakeTwilio

RESIDENT = "+447700900555"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _run(*args: str, env: dict[str, str]) -> tuple[int, str]:
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
    return process.returncode or 0, out.decode()


async def test_serve_answers_a_text_and_stops_cleanly(
    database_url: str, fake_twilio: FakeTwilio, tmp_path: Path
) -> None:
    survey = tmp_path / "parks.yaml"
    text = EXAMPLE_SURVEY.read_text().replace("opens: 2026-11-01", "opens: 2020-01-01")
    survey.write_text(text.replace("closes: 2026-12-31", "closes: 2099-12-31"))
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "TWILIO_"))},
        "LOOPLINE_DATABASE_URL": database_url,
        "LOOPLINE_PUBLIC_URL": PUBLIC_URL,
        "LOOPLINE_LOG_LEVEL": "INFO",
        "TWILIO_ACCOUNT_SID": fake_twilio.account_sid,
        "TWILIO_AUTH_TOKEN": fake_twilio.auth_token,
        "TWILIO_FROM_NUMBER": "+447700900000",
        "TWILIO_API_BASE_URL": fake_twilio.base_url,
    }
    assert (await _run("survey", "load", str(survey), env=env))[0] == 0

    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bots.cli",
        "serve",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as health:
                        if health.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            form = fake_twilio.inbound_form(from_=RESIDENT, to="+447700900000", body="PARKS")
            status, _ = await fake_twilio.send_inbound(
                http,
                public_url=f"{PUBLIC_URL}/webhooks/twilio/sms",
                local_url=f"http://127.0.0.1:{port}/webhooks/twilio/sms",
                params=form,
            )
            assert status == 200
            for _ in range(100):
                if len(fake_twilio.messages) == 2:
                    break
                await asyncio.sleep(0.1)
        assert [m["To"] for m in fake_twilio.messages] == [RESIDENT, RESIDENT]
        assert fake_twilio.messages[1]["Body"].startswith("How often do you visit a park?")
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(server.communicate(), 20)
    assert server.returncode == 0
    log = output.decode()
    assert "Loopline is listening" in log
    assert "PARKS" not in log
    assert RESIDENT not in log
