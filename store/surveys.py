"""Stored survey definitions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from flows.definition import Survey
from store.models import SurveyRow


async def save_survey(session: AsyncSession, *, survey: Survey, source: str, now: datetime) -> bool:
    """Store a survey, replacing the one with the same slug. True when it is new."""
    row = await session.scalar(select(SurveyRow).where(SurveyRow.slug == survey.slug))
    created = row is None
    if row is None:
        row = SurveyRow(slug=survey.slug)
        session.add(row)
    row.keyword = survey.keyword
    row.opens = survey.opens
    row.closes = survey.closes
    row.definition = survey.model_dump(mode="json")
    row.source = source
    row.loaded_at = now
    await session.flush()
    return created


async def all_surveys(session: AsyncSession) -> list[Survey]:
    rows = await session.scalars(select(SurveyRow.definition).order_by(SurveyRow.opens, SurveyRow.slug))
    return [Survey.model_validate(definition) for definition in rows]


async def latest_change(session: AsyncSession) -> tuple[int, datetime | None]:
    """A cheap fingerprint of the survey table, to know when a cached catalogue is stale."""
    rows = (await session.execute(select(SurveyRow.id, SurveyRow.loaded_at))).all()
    return len(rows), max((row.loaded_at for row in rows), default=None)
