"""Loopline's real aiohttp server on 127.0.0.1, wired to a real database and the fake Twilio API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import func, select, text

from bots.app import Loopline, build
from bots.config import Settings
from bots.web import create_app
from flows.survey_file import parse_survey
from store import surveys
from store.models import Base
from tests.conftest import EXAMPLE_SURVEY, PUBLIC_URL, Clock
from tests.fakes.slack_api import SIGNING_SECRET, TEAM_ID, FakeSlack
from tests.fakes.telegram_api import FakeTelegram, post_update
from tests.fakes.twilio_api import FakeTwilio

COUNCIL_NUMBER = "+447700900000"
TELEGRAM_SECRET = "loopline-test-secret-0123456789"
RESIDENT = "+447700900123"


THEMES_FILE = str(EXAMPLE_SURVEY.parent / "themes.yaml")
WARDS = "Northfield,Riverside,Old Town"


def settings_for(
    database_url: str,
    twilio: FakeTwilio,
    telegram: FakeTelegram | None = None,
    slack: FakeSlack | None = None,
    **overrides: str,
) -> Settings:
    env = {
        "LOOPLINE_DATABASE_URL": database_url,
        "LOOPLINE_PUBLIC_URL": PUBLIC_URL,
        "LOOPLINE_COUNCIL_NAME": "Exampleshire Council",
        "LOOPLINE_RETRY_BASE_SECONDS": "1",
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "TWILIO_FROM_NUMBER": COUNCIL_NUMBER,
        "TWILIO_API_BASE_URL": twilio.base_url,
        "TWILIO_TIMEOUT_SECONDS": "2",
        "TWILIO_SEGMENTS_PER_SECOND": "1000",
        **(
            {
                "TELEGRAM_BOT_TOKEN": telegram.token,
                "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
                "TELEGRAM_API_BASE_URL": telegram.base_url,
                "TELEGRAM_PER_CHAT_SECONDS": "0",
                "TELEGRAM_MESSAGES_PER_SECOND": "1000",
                "TELEGRAM_TIMEOUT_SECONDS": "2",
            }
            if telegram
            else {}
        ),
        **(
            {
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_BOT_TOKEN": slack.token,
                "SLACK_API_BASE_URL": slack.base_url,
                "SLACK_TEAM_ID": TEAM_ID,
                "SLACK_REPORTS_CHANNEL": "C0STREET",
                "LOOPLINE_THEMES_FILE": THEMES_FILE,
                "LOOPLINE_WARDS": WARDS,
            }
            if slack
            else {}
        ),
        **overrides,
    }
    return Settings.from_env(env)


@dataclass
class Harness:
    loopline: Loopline
    twilio: FakeTwilio
    clock: Clock
    runner: web.AppRunner
    http: aiohttp.ClientSession
    local_url: str
    telegram: FakeTelegram | None = None
    slack: FakeSlack | None = None

    async def telegram_update(
        self, update: Mapping[str, Any], *, secret: str | None = TELEGRAM_SECRET
    ) -> int:
        """Telegram delivers an update to the webhook; returns Loopline's HTTP status."""
        return await post_update(self.http, f"{self.local_url}/webhooks/telegram", update, secret=secret)

    async def text(
        self,
        body: str,
        *,
        sender: str = RESIDENT,
        sid: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> int:
        """A resident texts the council: Twilio posts a signed webhook; returns Loopline's HTTP status."""
        form = self.twilio.inbound_form(
            from_=sender, to=COUNCIL_NUMBER, body=body, message_sid=sid, extra=extra
        )
        status, _ = await self.twilio.send_inbound(
            self.http,
            public_url=f"{PUBLIC_URL}/webhooks/twilio/sms",
            local_url=f"{self.local_url}/webhooks/twilio/sms",
            params=form,
        )
        return status

    async def send_all(self) -> list[dict[str, str]]:
        """Let the sender drain the outbox; returns the messages Twilio accepted in this round."""
        before = len(self.twilio.messages)
        await self.loopline.sender.drain_until_empty()
        return self.twilio.messages[before:]

    async def conversation(self, *messages: str, sender: str = RESIDENT) -> list[str]:
        """Text each message in turn and return every reply the resident's phone received."""
        replies: list[str] = []
        for body in messages:
            assert await self.text(body, sender=sender) == 200
            replies += [m["Body"] for m in await self.send_all() if m["To"] == sender]
            self.clock.advance(seconds=30)
        return replies

    async def count(self, table: str) -> int:
        async with self.loopline.db.sessions() as session:
            model = Base.metadata.tables[table]
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.loopline.db.sessions() as session:
            return list((await session.execute(text(sql), params)).all())

    async def close(self) -> None:
        await self.http.close()
        await self.runner.cleanup()
        await self.loopline.close()


async def start_harness(
    database_url: str,
    twilio: FakeTwilio,
    clock: Clock,
    telegram: FakeTelegram | None = None,
    slack: FakeSlack | None = None,
    **overrides: str,
) -> Harness:
    settings = settings_for(database_url, twilio, telegram, slack, **overrides)
    loopline = build(settings, clock=clock)
    await loopline.start()
    survey = parse_survey(EXAMPLE_SURVEY.read_text(), str(EXAMPLE_SURVEY))
    async with loopline.db.sessions() as session, session.begin():
        await surveys.save_survey(session, survey=survey, source=str(EXAMPLE_SURVEY), now=clock())
    runner = web.AppRunner(create_app(loopline.services()), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    http = aiohttp.ClientSession()
    return Harness(loopline, twilio, clock, runner, http, f"http://{host}:{port}", telegram, slack)
