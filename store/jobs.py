"""Which scheduled jobs have run for which period."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import JobRunRow
from store.sql import insert_ignoring_duplicates


async def has_run(session: AsyncSession, *, job: str, period: str) -> bool:
    found = await session.scalar(select(JobRunRow.id).where(JobRunRow.job == job, JobRunRow.period == period))
    return found is not None


async def mark_run(session: AsyncSession, *, job: str, period: str, at: datetime) -> bool:
    """Record that ``job`` ran for ``period``; False if it was already recorded."""
    insert = insert_ignoring_duplicates(session, JobRunRow).values(job=job, period=period, ran_at=at)
    return await session.scalar(insert.returning(JobRunRow.id)) is not None
