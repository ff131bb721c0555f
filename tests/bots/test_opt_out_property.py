"""Whatever residents send, in whatever order, an opted-out resident is never queued or sent anything
(apart from the one confirmation of their opt-out). Runs the real engine, store, outbox and sender."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from bots.app import build
from bots.config import Settings
from channels.base import InboundMessage
from channels.simulator import Simulator
from flows.survey_file import parse_survey
from store import surveys
from tests.conftest import EXAMPLE_SURVEY

VOCABULARY = [
    "PARKS",
    "parks!",
    "STOP",
    "stop please",
    "Unsubscribe",
    "END",
    "START",
    "yes",
    "UNSTOP",
    "HELP",
    "1",
    "2",
    "b",
    "four",
    "9",
    "skip",
    "no",
    "CYMRAEG",
    "",
    "hello",
    "STOP the fly-tipping",
]
PEOPLE = ["+447700900001", "+447700900002"]

step = st.tuples(st.sampled_from(PEOPLE), st.sampled_from(VOCABULARY), st.booleans())


@given(steps=st.lists(step, max_size=14))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_nothing_is_queued_for_or_sent_to_an_opted_out_resident(
    steps: list[tuple[str, str, bool]], sqlite_template: Path, tmp_path: Path
) -> None:
    path = tmp_path / f"prop-{id(steps)}.db"
    shutil.copy(sqlite_template, path)
    try:
        asyncio.run(_play(f"sqlite+aiosqlite:///{path}", steps))
    finally:
        path.unlink(missing_ok=True)


async def _play(url: str, steps: list[tuple[str, str, bool]]) -> None:
    now = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    delivered: list[tuple[int, bool]] = []
    opted_out: dict[str, bool] = {}
    phone = Simulator(on_message=lambda m: delivered.append((m.id, opted_out.get(m.to, False))))
    loopline = build(
        Settings.from_env({"LOOPLINE_DATABASE_URL": url}), extra_channels={"sim": phone}, clock=lambda: now
    )
    try:
        async with loopline.db.sessions() as session, session.begin():
            await surveys.save_survey(
                session,
                survey=parse_survey(EXAMPLE_SURVEY.read_text(), "parks.yaml"),
                source="parks.yaml",
                now=now,
            )
        for n, (person, body, drain) in enumerate(steps):
            now += timedelta(minutes=1)
            await loopline.conversations.handle(InboundMessage("sim", person, body, f"m{n}"), now=now)
            async with loopline.db.sessions() as session:
                rows = (
                    await session.execute(
                        text(
                            "SELECT a.address, r.opted_out_at IS NOT NULL AS out, o.kind FROM outbox o "
                            "JOIN residents r ON r.id = o.resident_id "
                            "JOIN addresses a ON a.id = o.address_id "
                            "WHERE o.created_at = :now"
                        ),
                        {"now": now.strftime("%Y-%m-%d %H:%M:%S.%f")},
                    )
                ).all()
                people = (
                    await session.execute(
                        text(
                            "SELECT a.address, r.opted_out_at IS NOT NULL FROM residents r "
                            "JOIN addresses a ON a.resident_id = r.id"
                        )
                    )
                ).all()
            opted_out = {address: bool(out) for address, out in people}
            for address, out, kind in rows:
                assert not out or kind == "opt_out_confirmation", (address, kind)
            if drain:
                await loopline.sender.drain_until_empty()
        await loopline.sender.drain_until_empty()
        async with loopline.db.sessions() as session:
            kinds = dict((await session.execute(text("SELECT id, kind FROM outbox"))).all())
    finally:
        await loopline.close()
    for outbox_id, was_opted_out in delivered:
        assert not was_opted_out or kinds[outbox_id] == "opt_out_confirmation"
