"""Shared fixtures: a real database (SQLite and PostgreSQL), a fake Twilio, and Loopline's real server."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from store import migrate
from store.models import Base

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SURVEY = ROOT / "examples" / "parks.yaml"
POSTGRES_URL = os.environ.get(
    "LOOPLINE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
PUBLIC_URL = "https://loopline.example.gov.uk"

_UNSAFE_ENV = (
    "TWILIO_EDGE",
    "TWILIO_REGION",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxy variables and Twilio edge/region would send the real SDKs' traffic away from our fakes."""
    for name in _UNSAFE_ENV:
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith(("LOOPLINE_", "TWILIO_")):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "loopline.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def _postgres_migrated() -> str:
    async def reset() -> None:
        engine = create_async_engine(POSTGRES_URL)
        try:
            async with engine.begin() as connection:
                await connection.execute(text("DROP SCHEMA public CASCADE"))
                await connection.execute(text("CREATE SCHEMA public"))
        finally:
            await engine.dispose()

    try:
        asyncio.run(reset())
    except OSError as error:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}: {error}. Start it (see README).")
    migrate.upgrade(POSTGRES_URL)
    return POSTGRES_URL


async def _truncate_postgres(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated database of each kind; every test using it runs on both."""
    if request.param == "sqlite":
        path = tmp_path / "loopline.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
    else:
        url = request.getfixturevalue("_postgres_migrated")
        asyncio.run(_truncate_postgres(url))
        yield url


@dataclass
class Clock:
    """The time as Loopline sees it in a test: fixed inside the example survey's dates, moved by hand."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 22, 10, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fake_twilio() -> AsyncIterator[object]:
    from tests.fakes.twilio_api import FakeTwilio

    async with FakeTwilio() as fake:
        yield fake


@pytest.fixture
async def server(database_url: str, fake_twilio: object, clock: Clock) -> AsyncIterator[object]:
    """Loopline's real server with the example survey loaded (run on SQLite and on PostgreSQL)."""
    from tests.harness import start_harness

    harness = await start_harness(database_url, fake_twilio, clock)  # type: ignore[arg-type]
    try:
        yield harness
    finally:
        await harness.close()


@pytest.fixture
async def fake_telegram() -> AsyncIterator[object]:
    from tests.fakes.telegram_api import FakeTelegram

    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def tg_server(
    database_url: str, fake_twilio: object, fake_telegram: object, clock: Clock
) -> AsyncIterator[object]:
    """Loopline's real server with SMS and Telegram, against both fakes."""
    from tests.harness import start_harness

    harness = await start_harness(database_url, fake_twilio, clock, fake_telegram)  # type: ignore[arg-type]
    try:
        yield harness
    finally:
        await harness.close()


@pytest.fixture
async def fake_slack() -> AsyncIterator[object]:
    from tests.fakes.slack_api import FakeSlack

    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def slack_server(
    database_url: str, fake_twilio: object, fake_slack: object, clock: Clock
) -> AsyncIterator[object]:
    """Loopline's real server with Slack, against the fake Slack Web API."""
    from tests.harness import start_harness

    harness = await start_harness(database_url, fake_twilio, clock, slack=fake_slack)  # type: ignore[arg-type]
    try:
        yield harness
    finally:
        await harness.close()
