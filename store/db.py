"""Connecting to the database: SQLite (the embedded default) or PostgreSQL, chosen by URL alone."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

DEFAULT_URL = "sqlite+aiosqlite:///var/loopline.db"


def normalise_url(url: str) -> str:
    """Accept plain ``sqlite:///`` and ``postgresql://`` URLs and pick the async drivers."""
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url.removeprefix("sqlite:")
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    return url


@dataclass(slots=True)
class Database:
    """An engine, a session factory, and (for SQLite, which has one writer) an in-process write lock."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    is_sqlite: bool
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """Serialise writers on SQLite (one writer at a time anyway); a no-op on PostgreSQL."""
        if not self.is_sqlite:
            yield
            return
        async with self.write_lock:
            yield

    async def dispose(self) -> None:
        await self.engine.dispose()


def connect(url: str, *, synchronous: str = "NORMAL", echo: bool = False) -> Database:
    """Open a database by URL. SQLite runs in WAL mode with the given ``synchronous`` durability."""
    url = normalise_url(url)
    is_sqlite = url.startswith("sqlite")
    options: dict[str, Any] = {"echo": echo}
    if not is_sqlite:
        options.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
    engine = create_async_engine(url, **options)
    if is_sqlite:
        _tune_sqlite(engine, synchronous)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    return Database(engine=engine, sessions=sessions, is_sqlite=is_sqlite)


def _tune_sqlite(engine: AsyncEngine, synchronous: str) -> None:
    if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
        raise ValueError(f"unknown SQLite synchronous mode {synchronous!r}")

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
