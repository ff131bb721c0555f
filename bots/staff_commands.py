"""``loopline reports …``, ``loopline themes`` and ``loopline slack manifest``: the street reports."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta

from bots.config import Settings
from store import migrate, reports
from store.db import connect


def reports_list(settings: Settings, args: argparse.Namespace) -> int:
    async def show(report: reports.Report) -> None:
        themes = ", ".join(t.theme for t in report.themes) or "-"
        place = report.place or "-"
        print(
            f"#{report.id:<5} {report.created_at:%Y-%m-%d %H:%M}  {report.kind:<10} {place:<16} {themes:<30} "
            f"{report.heard[:70]}"
        )

    return each_report(settings, args, show)


def reports_export(settings: Settings, args: argparse.Namespace) -> int:
    writer = csv.writer(sys.stdout)
    writer.writerow(
        [
            "id",
            "created_at",
            "reporter",
            "kind",
            "place",
            "how_many",
            "themes",
            "heard",
            "quote",
            "follow_up",
            "source",
        ]
    )

    async def row(report: reports.Report) -> None:
        writer.writerow(
            [
                report.id,
                report.created_at.isoformat(),
                report.user_name,
                report.kind,
                report.place or "",
                report.how_many or "",
                ";".join(t.theme for t in report.themes),
                report.heard,
                report.quote or "",
                "yes" if report.follow_up else "no",
                report.source,
            ]
        )

    return each_report(settings, args, row)


def each_report(
    settings: Settings, args: argparse.Namespace, action: Callable[[reports.Report], Awaitable[None]]
) -> int:
    migrate.upgrade(settings.database_url)
    since = datetime.combine(args.since, time(0), tzinfo=settings.timezone) if args.since else None

    async def run() -> int:
        db = connect(settings.database_url)
        try:
            async with db.sessions() as session:
                async for report in reports.listing(session, theme=args.theme, place=args.ward, since=since):
                    await action(report)
        finally:
            await db.dispose()
        return 0

    return asyncio.run(run())


def themes(settings: Settings, args: argparse.Namespace) -> int:
    from bots.slack_desk import load_themes

    themes = load_themes(settings.themes_file)
    migrate.upgrade(settings.database_url)

    async def counts() -> dict[str, int]:
        db = connect(settings.database_url)
        try:
            async with db.sessions() as session:
                until = datetime.now(UTC)
                found = await reports.theme_counts(session, since=until - timedelta(days=30), until=until)
        finally:
            await db.dispose()
        return {c.theme: c.count for c in found}

    last_month = asyncio.run(counts())
    print(f"{'theme':<24} {'reports (30 days)':>17}  label")
    for theme in themes.themes:
        print(f"{theme.name:<24} {last_month.get(theme.name, 0):>17}  {theme.label}")
    return 0


def slack_manifest(settings: Settings, args: argparse.Namespace) -> int:
    from channels.slack import manifest

    print(json.dumps(manifest(settings.public_url, name=f"Loopline ({settings.policy.council})"), indent=2))
    return 0
