"""The ``loopline`` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from bots import closing_commands, staff_commands
from bots.config import ConfigError, Settings
from bots.logs import configure_logging
from channels.phone import normalise_phone
from channels.telegram import Telegram
from flows.definition import Survey, text_in
from flows.survey_file import SurveyFileError, parse_survey
from store import migrate, surveys
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
    listing.set_defaults(run=staff_commands.reports_list)
    export.set_defaults(run=staff_commands.reports_export)
    commands.add_parser("themes", help="the configured themes, with report counts").set_defaults(
        run=staff_commands.themes
    )
    yswd = commands.add_parser("yswd", help="You Said, We Did cards").add_subparsers(
        required=True, metavar="ACTION"
    )
    create = yswd.add_parser("create", help="draft a card from a YAML file")
    create.add_argument("file", type=Path)
    edit = yswd.add_parser("edit", help="replace a card from a YAML file (it needs approving again)")
    edit.add_argument("card", type=int)
    edit.add_argument("file", type=Path)
    approve = yswd.add_parser("approve", help="approve a colleague's card (maker-checker)")
    schedule = yswd.add_parser("schedule", help="schedule an approved card")
    schedule.add_argument("--at", required=True, help="local time, e.g. '2027-01-15 10:00'")
    cancel = yswd.add_parser("cancel", help="stop a card's sending; unsent messages are skipped")
    preview = yswd.add_parser("preview", help="the messages, their cost and the number of recipients")
    status = yswd.add_parser("status", help="progress of a card's sending, and its pulse")
    for sub in (approve, schedule, cancel, preview, status):
        sub.add_argument("card", type=int)
    for sub in (create, edit, approve, schedule, cancel):
        sub.add_argument("--as", dest="actor", required=True, help="who is doing this (for the audit log)")
    for sub, run in (
        (create, closing_commands.yswd_create),
        (edit, closing_commands.yswd_edit),
        (approve, closing_commands.yswd_approve),
        (schedule, closing_commands.yswd_schedule),
        (cancel, closing_commands.yswd_cancel),
        (preview, closing_commands.yswd_preview),
        (status, closing_commands.yswd_status),
    ):
        sub.set_defaults(run=run)
    yswd.add_parser("list", help="all cards").set_defaults(run=closing_commands.yswd_list)
    calendar = commands.add_parser(
        "calendar", help="open and planned surveys and sends by date, with overlaps"
    )
    calendar.set_defaults(run=closing_commands.calendar)
    loops = commands.add_parser("loops", help="which surveys' participants have been told what changed")
    loops.add_argument("--days", type=int, default=30, help="overdue when closed this many days ago (30)")
    loops.set_defaults(run=closing_commands.loops)

    slack = commands.add_parser("slack", help="Slack app set-up").add_subparsers(
        required=True, metavar="ACTION"
    )
    slack.add_parser("manifest", help="print a ready Slack app manifest").set_defaults(
        run=staff_commands.slack_manifest
    )

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


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(main())
