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

from bots.closing import Closing
from bots.config import ConfigError, Settings
from bots.logs import configure_logging
from channels.phone import normalise_phone
from channels.telegram import Telegram
from flows.definition import Survey, text_in
from flows.survey_file import SurveyFileError, parse_survey
from flows.yswd import Card, CardFileError, MissingPlaceholder
from store import cards, migrate, reports, surveys
from store.cards import CardError
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
        (create, _yswd_create),
        (edit, _yswd_edit),
        (approve, _yswd_approve),
        (schedule, _yswd_schedule),
        (cancel, _yswd_cancel),
        (preview, _yswd_preview),
        (status, _yswd_status),
    ):
        sub.set_defaults(run=run)
    yswd.add_parser("list", help="all cards").set_defaults(run=_yswd_list)
    calendar = commands.add_parser(
        "calendar", help="open and planned surveys and sends by date, with overlaps"
    )
    calendar.set_defaults(run=_calendar)
    loops = commands.add_parser("loops", help="which surveys' participants have been told what changed")
    loops.add_argument("--days", type=int, default=30, help="overdue when closed this many days ago (30)")
    loops.set_defaults(run=_loops)

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


def _closing(settings: Settings, work: Callable[[Closing], Awaitable[str]]) -> int:
    """Run one card step; a refused step (e.g. approving your own card) is a clear error, exit 1."""
    from bots.app import build

    _upgrade(settings)

    async def run() -> int:
        loopline = build(settings)
        try:
            print(await work(loopline.closing))
        except (CardError, CardFileError, MissingPlaceholder) as error:
            print(f"loopline: {error}", file=sys.stderr)
            return 1
        finally:
            await loopline.close()
        return 0

    return asyncio.run(run())


def _yswd_create(settings: Settings, args: argparse.Namespace) -> int:
    text = args.file.read_text(encoding="utf-8")

    async def work(closing: Closing) -> str:
        card_id = await closing.create(text, str(args.file), author=args.actor)
        return f"Card {card_id} drafted. A colleague approves it: loopline yswd approve {card_id} --as NAME"

    return _closing(settings, work)


def _yswd_edit(settings: Settings, args: argparse.Namespace) -> int:
    text = args.file.read_text(encoding="utf-8")

    async def work(closing: Closing) -> str:
        await closing.edit(args.card, text, str(args.file), actor=args.actor)
        return f"Card {args.card} changed; it needs approving again."

    return _closing(settings, work)


def _yswd_approve(settings: Settings, args: argparse.Namespace) -> int:
    async def work(closing: Closing) -> str:
        await closing.approve(args.card, approver=args.actor)
        return f"Card {args.card} approved by {args.actor}."

    return _closing(settings, work)


def _yswd_schedule(settings: Settings, args: argparse.Namespace) -> int:
    try:
        at = datetime.fromisoformat(args.at)
    except ValueError:
        print(f"loopline: --at must look like '2027-01-15 10:00', not {args.at!r}", file=sys.stderr)
        return 2
    at = at.replace(tzinfo=settings.timezone) if at.tzinfo is None else at

    async def work(closing: Closing) -> str:
        send_id, starts = await closing.schedule(args.card, at=at, actor=args.actor)
        moved = (
            ""
            if starts == at
            else f" (moved out of quiet hours, holidays or purdah to {starts:%Y-%m-%d %H:%M})"
        )
        return f"Card {args.card} scheduled as sending {send_id} for {at:%Y-%m-%d %H:%M}{moved}."

    return _closing(settings, work)


def _yswd_cancel(settings: Settings, args: argparse.Namespace) -> int:
    async def work(closing: Closing) -> str:
        stopped = await closing.cancel(args.card, actor=args.actor)
        return f"Card {args.card}: sending cancelled, {stopped} unsent messages stopped."

    return _closing(settings, work)


def _yswd_preview(settings: Settings, args: argparse.Namespace) -> int:
    return _closing(settings, lambda closing: closing.preview(args.card))


def _yswd_status(settings: Settings, args: argparse.Namespace) -> int:
    return _closing(settings, lambda closing: closing.status(args.card))


def _yswd_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(closing: Closing) -> str:
        async with closing.db.sessions() as session:
            found = await cards.listing(session)
        lines = [f"{'card':<6} {'survey':<20} {'state':<10} {'author':<14} {'approver':<14} title"]
        for c in found:
            title = Card.model_validate(c.definition).text("title", "en")
            lines.append(
                f"{c.id:<6} {c.survey:<20} {c.state:<10} {c.author:<14} {c.approver or '-':<14} {title}"
            )
        return "\n".join(lines)

    return _closing(settings, work)


def _calendar(settings: Settings, args: argparse.Namespace) -> int:
    """Consultation fatigue is real: show what residents will hear about, when, and who hears twice."""

    async def work(closing: Closing) -> str:
        today = datetime.now(settings.timezone).date()
        async with closing.db.sessions() as session:
            stored = [s for s in await surveys.all_surveys(session) if s.closes >= today]
            sends = await cards.scheduled(session)
            entries: list[tuple[date, str]] = [
                (
                    s.opens,
                    f"{s.opens} to {s.closes}  survey {s.slug} ({s.keyword})"
                    f"{' open now' if s.is_open_on(today) else ''}",
                )
                for s in stored
            ]
            for send, slug, definition in sends:
                title = Card.model_validate(definition).text("title", "en")
                local = send.due_at.astimezone(settings.timezone)
                entries.append(
                    (
                        local.date(),
                        f"{local:%Y-%m-%d %H:%M}  You Said, We Did {title!r} "
                        f"(card {send.card_id}, {slug}), {send.state}",
                    )
                )
            warnings = []
            window = timedelta(days=settings.budget_window_days)
            for n, (first, first_slug, _) in enumerate(sends):
                for second, second_slug, _ in sends[n + 1 :]:
                    if abs(second.due_at - first.due_at) <= window:
                        shared = await cards.shared_participants(
                            session, survey_a=first_slug, survey_b=second_slug
                        )
                        if shared:
                            warnings.append(
                                f"! cards {first.card_id} and {second.card_id} reach {shared} of the "
                                f"same residents within {window.days} days"
                            )
            for n, first_survey in enumerate(stored):
                for second_survey in stored[n + 1 :]:
                    if (
                        first_survey.opens <= second_survey.closes
                        and second_survey.opens <= first_survey.closes
                    ):
                        warnings.append(
                            f"! surveys {first_survey.slug} and {second_survey.slug} are open at the "
                            "same time"
                        )
        lines = [text for _, text in sorted(entries)] or ["Nothing open or planned."]
        return "\n".join(lines + warnings)

    return _closing(settings, work)


def _loops(settings: Settings, args: argparse.Namespace) -> int:
    async def work(closing: Closing) -> str:
        async with closing.db.sessions() as session:
            found = await cards.loops(session)
        today = datetime.now(settings.timezone).date()
        lines = [f"{'survey':<22} {'closed':<11} {'took part':>9} {'told':>6} {'share':>6}  loop"]
        for loop in found:
            share = f"{100 * loop.told / loop.participants:.0f}%" if loop.participants else "-"
            days = (today - loop.closes).days
            if days < 0:
                state = "open"
            elif loop.told == 0 and days > args.days:
                state = f"OVERDUE: closed {days} days ago, nobody told yet"
            else:
                state = "closing" if loop.told < loop.participants else "closed"
            lines.append(
                f"{loop.survey:<22} {loop.closes!s:<11} {loop.participants:>9} {loop.told:>6} {share:>6}  "
                f"{state}"
            )
        return "\n".join(lines)

    return _closing(settings, work)


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(main())
