"""The ``loopline`` command."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from bots.config import ConfigError, Settings
from bots.logs import configure_logging
from channels.phone import normalise_phone
from channels.telegram import Telegram
from flows.definition import Survey, text_in
from flows.survey_file import SurveyFileError, parse_survey
from store import migrate, reports, surveys
from store.db import connect


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as error:
        print(f"loopline: configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        result: int = args.run(settings, args)
    except KeyboardInterrupt:
        return 130
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loopline", description="Close the engagement loop with residents.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the webhooks, the sender and the scheduler")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--telegram-polling",
        action="store_true",
        help="fetch Telegram updates with getUpdates (no public URL)",
    )
    serve.add_argument(
        "--slack-socket-mode", action="store_true", help="receive Slack over a WebSocket (SLACK_APP_TOKEN)"
    )
    serve.set_defaults(run=_serve)

    reports = commands.add_parser("reports", help="frontline staff street reports").add_subparsers(
        required=True, metavar="ACTION"
    )
    listing = reports.add_parser("list", help="reports, newest last")
    export = reports.add_parser("export", help="all matching reports as CSV, streamed")
    export.add_argument("--csv", action="store_true", required=True)
    for sub in (listing, export):
        sub.add_argument("--theme")
        sub.add_argument("--ward")
        sub.add_argument("--since", type=date.fromisoformat, help="YYYY-MM-DD")
    listing.set_defaults(run=_reports_list)
    export.set_defaults(run=_reports_export)
    commands.add_parser("themes", help="the configured themes, with report counts").set_defaults(run=_themes)
    slack = commands.add_parser("slack", help="Slack app set-up").add_subparsers(
        required=True, metavar="ACTION"
    )
    slack.add_parser("manifest", help="print a ready Slack app manifest").set_defaults(run=_slack_manifest)

    telegram = commands.add_parser("telegram", help="Telegram bot set-up")
    telegram_actions = telegram.add_subparsers(required=True, metavar="ACTION")
    telegram_actions.add_parser("set-webhook", help="register the webhook with its secret").set_defaults(
        run=_telegram_set_webhook
    )
    telegram_actions.add_parser("info", help="pending updates and the last delivery error").set_defaults(
        run=_telegram_info
    )

    db = commands.add_parser("db", help="database maintenance").add_subparsers(
        required=True, metavar="ACTION"
    )
    db.add_parser("upgrade", help="apply migrations").set_defaults(run=_db_upgrade)

    survey = commands.add_parser("survey", help="survey definitions").add_subparsers(
        required=True, metavar="ACTION"
    )
    load = survey.add_parser("load", help="validate and store survey YAML files")
    load.add_argument("files", nargs="+", type=Path)
    load.set_defaults(run=_survey_load)
    survey.add_parser("list", help="list stored surveys").set_defaults(run=_survey_list)

    results = commands.add_parser("results", help="a survey's results")
    results.add_argument("slug")
    results.add_argument("--csv", action="store_true", help="one row per participant, streamed")
    results.set_defaults(run=_results)

    chat = commands.add_parser("chat", help="try a survey from a simulated phone")
    chat.add_argument("--as", dest="address", help="the phone number (or Telegram chat id) to pretend to be")
    chat.add_argument("--telegram", action="store_true", help="simulate a Telegram user, with buttons")
    chat.set_defaults(run=_chat)
    return parser


def _upgrade(settings: Settings) -> None:
    migrate.upgrade(settings.database_url)


def _db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    _upgrade(settings)
    print("Database is up to date.")
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from dataclasses import replace

    from bots.serve import serve

    settings = replace(settings, host=args.host or settings.host, port=args.port or settings.port)
    _upgrade(settings)
    asyncio.run(
        serve(settings, telegram_polling=args.telegram_polling, slack_socket_mode=args.slack_socket_mode)
    )
    return 0


def _survey_load(settings: Settings, args: argparse.Namespace) -> int:
    _upgrade(settings)
    return asyncio.run(_load_surveys(settings, args.files))


async def _load_surveys(settings: Settings, files: list[Path]) -> int:
    db = connect(settings.database_url, synchronous=settings.sqlite_synchronous)
    try:
        async with db.sessions() as session:
            stored = await surveys.all_surveys(session)
        parsed: list[tuple[Survey, Path]] = []
        for path in files:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                print(f"{path}: cannot read: {error}", file=sys.stderr)
                return 1
            try:
                others = [s for s in stored if s.slug not in {p.slug for p, _ in parsed}] + [
                    p for p, _ in parsed
                ]
                parsed.append((parse_survey(text, str(path), others=others), path))
            except SurveyFileError as error:
                print(error, file=sys.stderr)
                return 1
        now = datetime.now(UTC)
        async with db.writing(), db.sessions() as session, session.begin():
            for survey, path in parsed:
                await surveys.save_survey(session, survey=survey, source=str(path), now=now)
        for survey, _ in parsed:
            title = text_in(survey.title, survey.default_language, survey.default_language)
            questions = len(survey.questions)
            print(
                f"Loaded {survey.slug}: {title!r}, keyword {survey.keyword}, {questions} questions, "
                f"open {survey.opens} to {survey.closes}"
            )
        return 0
    finally:
        await db.dispose()


def _survey_list(settings: Settings, args: argparse.Namespace) -> int:
    _upgrade(settings)

    async def listing() -> int:
        db = connect(settings.database_url)
        try:
            async with db.sessions() as session:
                stored = await surveys.all_surveys(session)
        finally:
            await db.dispose()
        today = datetime.now(settings.timezone).date()
        print(f"{'slug':<24} {'keyword':<10} {'opens':<10}  {'closes':<10}  status")
        for s in stored:
            print(f"{s.slug:<24} {s.keyword:<10} {s.opens}  {s.closes}  {_status(s, today)}")
        if not stored:
            print("(no surveys yet: loopline survey load FILE.yaml)")
        return 0

    return asyncio.run(listing())


def _status(survey: Survey, today: date) -> str:
    if today < survey.opens:
        return "upcoming"
    return "open" if today <= survey.closes else "closed"


def _results(settings: Settings, args: argparse.Namespace) -> int:
    from bots.results import write_csv, write_summary

    _upgrade(settings)

    async def report() -> int:
        db = connect(settings.database_url)
        try:
            async with db.sessions() as session:
                found = {s.slug: s for s in await surveys.all_surveys(session)}.get(args.slug)
                if found is None:
                    print(f"loopline: no survey {args.slug!r} (see: loopline survey list)", file=sys.stderr)
                    return 1
                if args.csv:
                    await write_csv(session, found, sys.stdout)
                else:
                    await write_summary(session, found, sys.stdout)
        finally:
            await db.dispose()
        return 0

    return asyncio.run(report())


def _chat(settings: Settings, args: argparse.Namespace) -> int:
    from bots.chat import run_chat

    _upgrade(settings)
    logging.getLogger().setLevel(
        max(logging.WARNING, logging.getLogger().level)
    )  # keep the screen for the chat
    if args.telegram:
        run_chat(settings, args.address or "900000001", telegram=True)
    else:
        run_chat(settings, normalise_phone(args.address or "+447700900123"))
    return 0


def _telegram_set_webhook(settings: Settings, args: argparse.Namespace) -> int:
    from channels.telegram import ALLOWED_UPDATES

    async def register() -> int:
        telegram = _telegram_or_exit(settings)
        try:
            await telegram.start()
            url = f"{settings.public_url}/webhooks/telegram"
            await telegram.set_webhook(url, allowed_updates=ALLOWED_UPDATES)
            print(f"Telegram will send updates for @{telegram.username} to {url}")
        finally:
            await telegram.close()
        return 0

    return asyncio.run(register())


def _telegram_info(settings: Settings, args: argparse.Namespace) -> int:
    async def info() -> int:
        telegram = _telegram_or_exit(settings)
        try:
            await telegram.start()
            details = await telegram.webhook_info()
        finally:
            await telegram.close()
        print(f"bot: @{telegram.username}")
        for key in ("url", "pending_update_count", "last_error_date", "last_error_message"):
            print(f"{key}: {details.get(key) or '-'}")
        return 0

    return asyncio.run(info())


def _telegram_or_exit(settings: Settings) -> Telegram:
    from bots.app import telegram_channel

    telegram = telegram_channel(settings)
    if telegram is None:
        raise SystemExit("loopline: set TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET first")
    return telegram


def _reports_list(settings: Settings, args: argparse.Namespace) -> int:
    async def show(report: reports.Report) -> None:
        themes = ", ".join(t.theme for t in report.themes) or "-"
        place = report.place or "-"
        print(
            f"#{report.id:<5} {report.created_at:%Y-%m-%d %H:%M}  {report.kind:<10} {place:<16} {themes:<30} "
            f"{report.heard[:70]}"
        )

    return _each_report(settings, args, show)


def _reports_export(settings: Settings, args: argparse.Namespace) -> int:
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

    return _each_report(settings, args, row)


def _each_report(
    settings: Settings, args: argparse.Namespace, action: Callable[[reports.Report], Awaitable[None]]
) -> int:
    _upgrade(settings)
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


def _themes(settings: Settings, args: argparse.Namespace) -> int:
    from bots.slack_desk import load_themes

    themes = load_themes(settings.themes_file)
    _upgrade(settings)

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


def _slack_manifest(settings: Settings, args: argparse.Namespace) -> int:
    from channels.slack import manifest

    print(json.dumps(manifest(settings.public_url, name=f"Loopline ({settings.policy.council})"), indent=2))
    return 0


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(main())
