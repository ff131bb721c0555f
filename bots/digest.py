"""The weekly "word on the street" digest posted to the reports channel in Slack.

Due from Monday 09:00 (council time) for the week before. The scheduler only wakes this up every
hour and at start-up; ``job_runs`` makes each week's digest go out once, even across restarts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from channels.slack import SlackClient, post_message
from flows.themes import ThemeList
from store import cards, jobs, reports
from store.db import Database

log = logging.getLogger(__name__)

JOB = "weekly_digest"
SPIKE_FACTOR = 2
SPIKE_MINIMUM = 5
OVERDUE_DAYS = 30


@dataclass(frozen=True, slots=True)
class Week:
    start: datetime  # Monday 00:00 local
    end: datetime  # the next Monday 00:00 local

    @property
    def period(self) -> str:
        year, week, _ = self.start.isocalendar()
        return f"{year}-W{week:02d}"


def due_week(now: datetime, timezone: ZoneInfo) -> Week:
    """The week (Monday to Sunday, council time) whose digest is due at ``now``: last week from
    Monday 09:00, the week before that until then."""
    local = now.astimezone(timezone)
    monday = datetime.combine(local.date() - timedelta(days=local.weekday()), time(0), tzinfo=timezone)
    if local < monday + timedelta(hours=9):
        monday -= timedelta(days=7)
    return Week(monday - timedelta(days=7), monday)


async def compose(db: Database, themes: ThemeList, week: Week) -> str:
    labels = {t.name: t.label for t in themes.themes}
    async with db.sessions() as session:
        counts = await reports.theme_counts(session, since=week.start, until=week.end)
        places = await reports.place_counts(session, since=week.start, until=week.end)
        kinds = await reports.kind_counts(session, since=week.start, until=week.end)
        myths = [
            r async for r in reports.listing(session, since=week.start, until=week.end) if r.kind == "myth"
        ]
    total = sum(kinds.values())
    lines = [f"*Word on the street: week of {week.start:%-d %b %Y}* ({total} reports)"]
    if not total:
        lines.append("No reports this week.")
        return "\n".join(lines)
    by_theme = ", ".join(
        f"{labels.get(c.theme, c.theme)} {c.count} ({c.count - c.previous:+d})" for c in counts[:10]
    )
    lines.append(f"*By theme:* {by_theme or 'none tagged'}")
    by_place = ", ".join(f"{place} {n}" for place, n in sorted(places.items(), key=lambda p: (-p[1], p[0])))
    lines.append(f"*By ward:* {by_place}")
    spikes = [c for c in counts if c.count >= SPIKE_MINIMUM and c.count >= SPIKE_FACTOR * max(c.previous, 1)]
    if spikes:
        lines.append(
            "*Spikes:* "
            + ", ".join(
                f"{labels.get(c.theme, c.theme)} {c.count} reports ({c.previous} the week before)"
                for c in spikes
            )
        )
    overdue = await _overdue_loops(db, week.end.date())
    if overdue:
        lines.append(
            "*Overdue loops* (closed over 30 days ago, nobody told what changed yet): " + ", ".join(overdue)
        )
    if myths:
        lines.append("*Myths to correct:*")
        lines += [f"• {m.heard[:200]}" + (f" ({m.place})" if m.place else "") for m in myths[:10]]
    return "\n".join(lines)


async def post_if_due(
    db: Database,
    client: SlackClient,
    channel: str,
    themes: ThemeList,
    *,
    now: datetime,
    timezone: ZoneInfo,
) -> bool:
    """Post last week's digest unless it went out already; True when posted now."""
    week = due_week(now, timezone)
    async with db.sessions() as session:
        if await jobs.has_run(session, job=JOB, period=week.period):
            return False
    text = await compose(db, themes, week)
    await post_message(client, channel, text)  # at least once: a crash before the next line posts again
    async with db.writing(), db.sessions() as session, session.begin():
        await jobs.mark_run(session, job=JOB, period=week.period, at=now)
    log.info("weekly digest posted", extra={"period": week.period})
    return True


async def _overdue_loops(db: Database, today: date) -> list[str]:
    async with db.sessions() as session:
        found = await cards.loops(session)
    return [
        f"{loop.survey} ({loop.participants} took part)"
        for loop in found
        if loop.participants and not loop.told and (today - loop.closes).days > OVERDUE_DAYS
    ]
