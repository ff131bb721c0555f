"""Handling one inbound message: one transaction from dedupe to queued replies. No provider calls."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bots.catalogue import CatalogueCache
from channels.base import InboundMessage
from flows import engine
from flows.effects import AnswerRecorded, Reply, ResponseEnded, ResponseStarted
from flows.quiet_hours import QuietHours
from flows.state import Policy
from store import inbound, outbox, residents, responses
from store.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Conversations:
    db: Database
    catalogue: CatalogueCache
    policy: Policy
    timezone: ZoneInfo
    on_queued: Callable[[], None] = lambda: None
    buttons_on: frozenset[str] = frozenset()  # channels that show choices as buttons

    async def handle(self, message: InboundMessage, *, now: datetime) -> bool:
        """Record, run the engine, save, queue replies; False when the message was a duplicate."""
        async with self.db.writing(), self.db.sessions() as session, session.begin():
            known = await residents.find_or_create(
                session, channel=message.channel, address=message.sender, now=now
            )
            inbound_id = await inbound.record_once(
                session,
                channel=message.channel,
                provider_id=message.provider_id,
                address_id=known.address_id,
                body=message.text,
                received_at=now,
            )
            if inbound_id is None:
                log.info(
                    "duplicate inbound ignored",
                    extra={"channel": message.channel, "provider_id": message.provider_id},
                )
                await session.rollback()
                return False
            catalogue = await self.catalogue.get(session)
            transition = engine.handle_message(
                known.resident,
                message.text,
                catalogue=catalogue,
                now=now.astimezone(self.timezone),
                policy=self.policy,
                buttons=message.channel in self.buttons_on,
            )
            queued = await apply(
                session,
                known=known,
                channel=message.channel,
                transition=transition,
                policy=self.policy,
                now=now,
            )
        if queued:
            self.on_queued()
        return True

    async def sweep(self, *, now: datetime, quiet_hours: QuietHours) -> tuple[int, int]:
        """Send the one reminder for surveys left unfinished (not in quiet hours) and expire stale ones.

        Returns (reminders queued, surveys expired).
        """
        local = now.astimezone(self.timezone)
        quiet = quiet_hours.contains(local.time())
        reminded = expired = 0
        async with self.db.writing(), self.db.sessions() as session, session.begin():
            catalogue = await self.catalogue.get(session)
            for due in await residents.due_sessions(session, now=now):
                known = residents.Known(due.resident_id, due.address_id, due.resident)
                step = engine.expire if quiet or due.resident.opted_out else engine.remind
                transition = step(due.resident, catalogue=catalogue, now=local, policy=self.policy)
                if transition.resident == due.resident:  # nothing to do yet (e.g. quiet hours)
                    continue
                expired += any(isinstance(e, ResponseEnded) for e in transition.effects)
                reminded += await apply(
                    session,
                    known=known,
                    channel=due.channel,
                    transition=transition,
                    policy=self.policy,
                    now=now,
                )
        if reminded:
            self.on_queued()
        return reminded, expired


async def apply(
    session: AsyncSession,
    *,
    known: residents.Known,
    channel: str,
    transition: engine.Transition,
    policy: Policy,
    now: datetime,
) -> int:
    """Carry out the engine's effects; the one place effects become rows. Returns messages queued."""
    replies: list[outbox.NewMessage] = []
    for effect in transition.effects:
        match effect:
            case Reply():
                replies.append(_reply_row(known, channel, effect))
            case ResponseStarted():
                await responses.start(
                    session,
                    survey=effect.survey,
                    resident_id=known.resident_id,
                    channel=channel,
                    language=effect.language,
                    at=now,
                )
            case AnswerRecorded():
                await responses.record_answer(
                    session,
                    survey=effect.survey,
                    resident_id=known.resident_id,
                    question=effect.question,
                    value=effect.value,
                    status=effect.status,
                    at=now,
                )
            case ResponseEnded():
                await responses.end(
                    session,
                    survey=effect.survey,
                    resident_id=known.resident_id,
                    outcome=effect.outcome,
                    at=now,
                )
            case _:
                pass  # opt-out, opt-in and language live in the resident's saved state
    await residents.save(
        session,
        before=known,
        resident=transition.resident,
        due_at=policy.next_check(transition.resident),
        now=now,
    )
    await outbox.enqueue(session, replies, now=now)
    return len(replies)


def _reply_row(known: residents.Known, channel: str, reply: Reply) -> outbox.NewMessage:
    buttons = _buttons(reply)
    return outbox.NewMessage(
        resident_id=known.resident_id,
        address_id=known.address_id,
        channel=channel,
        body=reply.text,
        kind=reply.kind,
        priority=outbox.PRIORITY_REPLY,
        buttons=buttons,
    )


def _buttons(reply: Reply) -> dict[str, list[list[str]]] | None:
    if not reply.choices:
        return None
    pairs: Sequence[list[str]] = [[choice.label, choice.value] for choice in reply.choices]
    return {"choices": list(pairs)}
