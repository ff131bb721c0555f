"""Staff street reports and their themes, and the counts the comms team and staff read."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Base, ReportRow, ReportThemeRow
from store.sql import insert_ignoring_duplicates

REPORTS = Base.metadata.tables["reports"]
REPORT_THEMES = Base.metadata.tables["report_themes"]


@dataclass(frozen=True, slots=True)
class ThemeTag:
    theme: str
    matched: str | None  # the words that made the tagger suggest it; None when staff chose it
    by_staff: bool


@dataclass(frozen=True, slots=True)
class NewReport:
    team_id: str
    user_id: str
    user_name: str
    heard: str
    kind: str
    place: str | None
    how_many: str | None
    quote: str | None
    follow_up: bool
    source: str
    dedupe_key: str


async def record(
    session: AsyncSession, report: NewReport, tags: Sequence[ThemeTag], *, now: datetime
) -> int | None:
    """Store a report once per Slack request (``dedupe_key``); None when it was already stored."""
    insert = insert_ignoring_duplicates(session, ReportRow).values(
        **asdict(report), created_at=now, updated_at=now
    )
    report_id: int | None = await session.scalar(insert.returning(ReportRow.id))
    if report_id is not None:
        await _write_tags(session, report_id, tags)
    return report_id


EDITABLE = ("heard", "kind", "place", "how_many", "quote", "follow_up")


async def revise(
    session: AsyncSession,
    *,
    report_id: int,
    user_id: str,
    changes: NewReport,
    tags: Sequence[ThemeTag],
    now: datetime,
) -> bool:
    """Replace a report's details and themes (staff corrections are kept as chosen by staff).
    Only its author may revise it. False when there is no such report of theirs."""
    result = await session.execute(
        update(REPORTS)
        .where(REPORTS.c.id == report_id, REPORTS.c.user_id == user_id)
        .values(**{field: getattr(changes, field) for field in EDITABLE}, updated_at=now)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    await session.execute(delete(REPORT_THEMES).where(REPORT_THEMES.c.report_id == report_id))
    await _write_tags(session, report_id, tags)
    return True


async def _write_tags(session: AsyncSession, report_id: int, tags: Sequence[ThemeTag]) -> None:
    if tags:
        await session.execute(
            REPORT_THEMES.insert(),
            [
                {"report_id": report_id, "theme": t.theme, "matched": t.matched, "by_staff": t.by_staff}
                for t in tags
            ],
        )


@dataclass(frozen=True, slots=True)
class Report:
    id: int
    user_id: str
    user_name: str
    heard: str
    kind: str
    place: str | None
    how_many: str | None
    quote: str | None
    follow_up: bool
    source: str
    created_at: datetime
    themes: tuple[ThemeTag, ...]


async def get(session: AsyncSession, *, report_id: int) -> Report | None:
    async for report in _reports(session, select(ReportRow).where(ReportRow.id == report_id)):
        return report
    return None


async def by_user(session: AsyncSession, *, user_id: str, limit: int = 10) -> list[Report]:
    query = select(ReportRow).where(ReportRow.user_id == user_id).order_by(ReportRow.id.desc()).limit(limit)
    return [report async for report in _reports(session, query)]


async def listing(
    session: AsyncSession,
    *,
    theme: str | None = None,
    place: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AsyncIterator[Report]:
    """Reports in order, filtered, streamed (for CSV exports of any size)."""
    query = select(ReportRow).order_by(ReportRow.id)
    if theme:
        query = query.where(
            ReportRow.id.in_(select(ReportThemeRow.report_id).where(ReportThemeRow.theme == theme))
        )
    if place:
        query = query.where(func.lower(ReportRow.place) == place.lower())
    if since:
        query = query.where(ReportRow.created_at >= since)
    if until:
        query = query.where(ReportRow.created_at < until)
    async for report in _reports(session, query):
        yield report


async def _reports(session: AsyncSession, query: object) -> AsyncIterator[Report]:
    rows = await session.stream_scalars(query.execution_options(yield_per=500))  # type: ignore[attr-defined]
    async for chunk in rows.partitions():
        ids = [row.id for row in chunk]
        tags: dict[int, list[ThemeTag]] = {i: [] for i in ids}
        found = await session.execute(
            select(ReportThemeRow).where(ReportThemeRow.report_id.in_(ids)).order_by(ReportThemeRow.id)
        )
        for tag in found.scalars():
            tags[tag.report_id].append(ThemeTag(tag.theme, tag.matched, tag.by_staff))
        for row in chunk:
            yield Report(
                row.id,
                row.user_id,
                row.user_name,
                row.heard,
                row.kind,
                row.place,
                row.how_many,
                row.quote,
                row.follow_up,
                row.source,
                row.created_at,
                tuple(tags[row.id]),
            )


@dataclass(frozen=True, slots=True)
class ThemeCount:
    theme: str
    count: int
    previous: int  # in the period of the same length just before


async def theme_counts(
    session: AsyncSession, *, since: datetime, until: datetime, place: str | None = None
) -> list[ThemeCount]:
    """Reports per theme in [since, until), with the count for the period just before, most first."""
    before = since - (until - since)

    async def counts(start: datetime, end: datetime) -> dict[str, int]:
        query = (
            select(ReportThemeRow.theme, func.count())
            .join(ReportRow, ReportRow.id == ReportThemeRow.report_id)
            .where(ReportRow.created_at >= start, ReportRow.created_at < end)
            .group_by(ReportThemeRow.theme)
        )
        if place:
            query = query.where(func.lower(ReportRow.place) == place.lower())
        return {theme: count for theme, count in (await session.execute(query)).all()}

    now, then = await counts(since, until), await counts(before, since)
    found = [ThemeCount(theme, count, then.get(theme, 0)) for theme, count in now.items()]
    return sorted(found, key=lambda c: (-c.count, c.theme))


async def kind_counts(session: AsyncSession, *, since: datetime, until: datetime) -> dict[str, int]:
    query = (
        select(ReportRow.kind, func.count())
        .where(ReportRow.created_at >= since, ReportRow.created_at < until)
        .group_by(ReportRow.kind)
    )
    return {kind: count for kind, count in (await session.execute(query)).all()}


async def place_counts(session: AsyncSession, *, since: datetime, until: datetime) -> dict[str, int]:
    query = (
        select(ReportRow.place, func.count())
        .where(ReportRow.created_at >= since, ReportRow.created_at < until)
        .group_by(ReportRow.place)
    )
    return {place or "(no place)": count for place, count in (await session.execute(query)).all()}


async def id_for(session: AsyncSession, *, dedupe_key: str) -> int | None:
    """The report stored for a Slack request, if any."""
    found: int | None = await session.scalar(select(ReportRow.id).where(ReportRow.dedupe_key == dedupe_key))
    return found
