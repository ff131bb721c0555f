"""Small SQL helpers shared by the query modules."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert_ignoring_duplicates(session: AsyncSession, model: type[Any]) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` in the session's dialect (SQLite or PostgreSQL), on the table
    itself: a plain Core statement costs far less than an ORM-enabled one on the hot path."""
    table = model.__table__
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()
