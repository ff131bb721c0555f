"""Telegram long polling, for councils with no public URL: the same handling as the webhook.

The offset moves past an update only once it is stored, so a restart never loses one; an update
Telegram sends again after a restart is recognised by its update_id and ignored.
"""

from __future__ import annotations

import asyncio
import logging

from bots.web import Services
from channels.errors import BadRequest, ChannelError
from channels.telegram import Telegram

log = logging.getLogger(__name__)


async def poll(
    services: Services, telegram: Telegram, *, long_poll_seconds: int = 30, max_backoff: float = 60.0
) -> None:
    """Fetch and handle updates until cancelled."""
    await telegram.delete_webhook()  # getUpdates is refused while a webhook is set
    offset: int | None = None
    backoff = 1.0
    while True:
        try:
            updates = await telegram.get_updates(offset=offset, timeout=long_poll_seconds)
        except ChannelError as error:
            log.warning(
                "Telegram polling failed; retrying",
                extra={"error": type(error).__name__, "retry_in": backoff},
            )
            await asyncio.sleep(backoff)
            backoff = min(max_backoff, backoff * 2)
            continue
        backoff = 1.0
        for update_id, raw in updates:
            await handle_raw_update(services, telegram, raw)
            offset = update_id + 1


async def handle_raw_update(services: Services, telegram: Telegram, raw: bytes) -> None:
    try:
        message = telegram.parse_update(raw)
    except BadRequest:
        log.warning("skipped an unreadable Telegram update")
        return
    if message is not None:
        services.follow_up(await services.conversations.handle(message, now=services.clock()))
