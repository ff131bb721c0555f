"""``loopline serve``: webhooks, the sender and the scheduler in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import UTC, datetime

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bots import digest
from bots.app import Loopline, build
from bots.config import Settings
from bots.telegram_polling import poll
from bots.web import create_app
from channels.slack import SocketMode
from store import outbox

log = logging.getLogger(__name__)


async def report_interrupted_sends(loopline: Loopline) -> list[int]:
    """At start-up: rows a previous process left mid-send are reported and never resent."""
    async with loopline.db.writing(), loopline.db.sessions() as session, session.begin():
        ids = await outbox.interrupt_unfinished_sends(session, now=datetime.now(UTC))
    if ids:
        log.warning(
            "messages were being sent when Loopline stopped; not resending them",
            extra={"outbox_ids": ids[:50], "count": len(ids)},
        )
    return ids


def schedule_jobs(loopline: Loopline) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=loopline.settings.timezone)

    async def sweep_sessions() -> None:
        reminded, expired = await loopline.conversations.sweep(
            now=datetime.now(UTC), quiet_hours=loopline.settings.quiet_hours
        )
        if reminded or expired:
            log.info("survey sweep", extra={"reminders": reminded, "expired": expired})

    scheduler.add_job(
        sweep_sessions,
        "interval",
        minutes=1,
        id="sweep_sessions",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )

    async def send_due() -> None:
        await loopline.closing.send_due()

    # every 30 s and at start-up: a sending due while Loopline was down starts as soon as it is back
    scheduler.add_job(
        send_due,
        "interval",
        seconds=30,
        id="send_due",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
        next_run_time=datetime.now(UTC),
    )
    slack, channel = loopline.slack, loopline.settings.slack and loopline.settings.slack.reports_channel
    if slack is not None and channel:

        async def weekly_digest() -> None:
            await digest.post_if_due(
                loopline.db,
                slack.client,
                channel,
                slack.desk.themes,
                now=datetime.now(UTC),
                timezone=loopline.settings.timezone,
            )

        # hourly and at start-up: a digest missed while Loopline was down goes out when it is back
        scheduler.add_job(
            weekly_digest,
            "interval",
            hours=1,
            id="weekly_digest",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),
        )
    return scheduler


async def serve(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    telegram_polling: bool = False,
    slack_socket_mode: bool = False,
) -> None:
    """Run until SIGINT/SIGTERM (or ``stop`` is set). The database must already be migrated.

    ``telegram_polling``: fetch Telegram updates with getUpdates instead of receiving webhooks.
    """
    loopline = build(settings)
    await loopline.start()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    services = loopline.services()
    runner = web.AppRunner(create_app(services), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await report_interrupted_sends(loopline)
    await site.start()
    tasks = [asyncio.create_task(loopline.sender.run(), name="outbox-sender")]
    if telegram_polling:
        if loopline.telegram is None:
            raise SystemExit("--telegram-polling needs TELEGRAM_BOT_TOKEN")
        tasks.append(asyncio.create_task(poll(services, loopline.telegram), name="telegram-polling"))
    socket_mode = None
    if slack_socket_mode:
        socket_mode = await _start_socket_mode(loopline)
    scheduler = schedule_jobs(loopline)
    scheduler.start()
    log.info(
        "Loopline is listening",
        extra={
            "host": settings.host,
            "port": settings.port,
            "sms": loopline.sms is not None,
            "telegram": "polling" if telegram_polling else loopline.telegram is not None,
        },
    )
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        if socket_mode is not None:
            await socket_mode.close()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        released = await loopline.sender.release_unsent()
        if released:
            log.info("unsent messages put back in the queue", extra={"count": released})
        await runner.cleanup()
        await loopline.close()


async def _start_socket_mode(loopline: Loopline) -> SocketMode:
    """Slack over a WebSocket (SLACK_APP_TOKEN), for councils without a public URL: same handlers."""
    config = loopline.settings.slack
    if loopline.slack is None or config is None or config.app_token is None:
        raise SystemExit(
            "--slack-socket-mode needs SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN and SLACK_APP_TOKEN"
        )
    socket_mode = SocketMode(loopline.slack.app, config.app_token)
    await socket_mode.connect()
    return socket_mode
