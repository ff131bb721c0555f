"""Handling one inbound message: one transaction from dedupe to queued replies. No provider calls."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bots.catalogue import CatalogueCache
from channels.base import ButtonPress, InboundKind, InboundMessage
from flows import engine
from flows.effects import AnswerRecorded, Reply, ResponseEnded, ResponseStarted
from flows.phrases import say
from flows.quiet_hours import QuietHours
from flows.state import Policy
from flows.yswd import read_pulse
from store import cards, inbound, outbox, residents, responses
from store.db import Database

log = logging.getLogger(__name__)

PULSE_WINDOW = timedelta(days=14)  # a pulse answer counts for the card sent in the last two weeks


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """What to tell the channel about a button press once the transaction has committed."""

    channel: str
    chat: str
    press: ButtonPress
    chosen: str | None  # the label of the accepted answer, shown on the question; None: not accepted
    notice: str | None
    original_text: str | None


@dataclass(frozen=True, slots=True)
class Handled:
    duplicate: bool = False
    acknowledgement: Acknowledgement | None = None


ButtonDecoder = Callable[[str], "tuple[str, str] | None"]


@dataclass(frozen=True, slots=True)
class Conversations:
    db: Database
    catalogue: CatalogueCache
    policy: Policy
    timezone: ZoneInfo
    on_queued: Callable[[], None] = lambda: None
    buttons_on: frozenset[str] = frozenset()  # channels that show choices as buttons
    button_decoders: Mapping[str, ButtonDecoder] = field(default_factory=dict)

    async def handle(self, message: InboundMessage, *, now: datetime) -> Handled:
        """Record, run the engine, save, queue replies: one transaction, no provider call."""
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
                return Handled(duplicate=True)
            handled, queued = await self._respond(session, message, known, now)
        if queued:
            self.on_queued()
        return handled

    async def _respond(
        self, session: AsyncSession, message: InboundMessage, known: residents.Known, now: datetime
    ) -> tuple[Handled, int]:
        if not message.private:
            return Handled(), 0  # group chats: Loopline only talks to residents one to one
        language = known.resident.language or message.language or "en"
        match message.kind:
            case InboundKind.BLOCKED:
                await residents.mark_opted_out(session, resident_id=known.resident_id, at=now)
                return Handled(), 0
            case InboundKind.UNBLOCKED:
                return Handled(), 0
            case InboundKind.UNSUPPORTED:
                if known.resident.opted_out:
                    return Handled(), 0
                return Handled(), await self._say(
                    session, known, message.channel, say("text_only", language), now
                )
            case InboundKind.CONTACT:
                assert message.contact_phone is not None
                linked = await residents.link_phone(
                    session, known=known, phone=message.contact_phone, now=now
                )
                if linked.resident.opted_out:
                    return Handled(), 0
                return Handled(), await self._say(
                    session, linked, message.channel, say("linked", language), now
                )
            case InboundKind.BUTTON:
                return await self._press(session, message, known, now)
        text = _engine_text(message, await self.catalogue.get(session))
        pulsed = await self._pulse(session, message, known, text, now)
        if pulsed is not None:
            return Handled(), pulsed
        queued = await self._run(session, message, known, text, now)
        if message.command == "start" and message.channel in self.buttons_on and not known.resident.opted_out:
            queued += await self._offer_contact(session, known, message, now)
        return Handled(), queued

    async def _offer_contact(
        self, session: AsyncSession, known: residents.Known, message: InboundMessage, now: datetime
    ) -> int:
        """Ask a chat-app resident to share their number, so their choices (STOP, limits) cover texts too."""
        if await residents.has_address(session, resident_id=known.resident_id, channel="sms"):
            return 0
        language = known.resident.language or message.language or "en"
        row = _reply_row(known, message.channel, Reply(say("share_number", language)))
        await outbox.enqueue(session, [replace(row, buttons={"contact": True})], now=now)
        return 1

    async def _pulse(
        self, session: AsyncSession, message: InboundMessage, known: residents.Known, text: str, now: datetime
    ) -> int | None:
        """A reply to "Did this answer your concern?" after a You Said, We Did message, if it is one."""
        if known.resident.session is not None or known.resident.opted_out or message.command is not None:
            return None
        answer = read_pulse(text)
        if answer is None:
            return None
        card = await cards.record_pulse(
            session, resident_id=known.resident_id, answer=answer, now=now, within=PULSE_WINDOW
        )
        if card is None:
            return None
        language = known.resident.language or message.language or "en"
        return await self._say(session, known, message.channel, say("pulse_thanks", language), now)

    async def _press(
        self, session: AsyncSession, message: InboundMessage, known: residents.Known, now: datetime
    ) -> tuple[Handled, int]:
        """A button press counts only for the question the resident is on now; anything else (a
        forged, stale or repeated press) is answered politely and changes nothing."""
        assert message.press is not None
        decode = self.button_decoders.get(message.channel)
        decoded = decode(message.press.data) if decode else None
        current = known.resident.session.question if known.resident.session else ""
        asked = await outbox.find_sent(
            session, channel=message.channel, provider_id=f"{message.sender}:{message.press.message_id}"
        )
        offered = (
            asked is not None
            and decoded is not None
            and decoded[0] == asked.question
            and any(value == decoded[1] for _, value in asked.choices)
        )
        if decoded is None or asked is None or not offered or decoded[0] not in ("", "pulse", current):
            language = known.resident.language or message.language or "en"
            notice = say("stale_button", language)
            ack = Acknowledgement(message.channel, message.sender, message.press, None, notice, None)
            return Handled(acknowledgement=ack), 0
        value = decoded[1]
        chosen = next(label for label, v in asked.choices if v == value)
        ack = Acknowledgement(message.channel, message.sender, message.press, chosen, None, asked.body)
        if decoded[0] == "pulse":
            return Handled(acknowledgement=ack), await self._pulse(session, message, known, value, now) or 0
        return Handled(acknowledgement=ack), await self._run(session, message, known, value, now)

    async def _run(
        self, session: AsyncSession, message: InboundMessage, known: residents.Known, text: str, now: datetime
    ) -> int:
        catalogue = await self.catalogue.get(session)
        transition = engine.handle_message(
            known.resident,
            text,
            catalogue=catalogue,
            now=now.astimezone(self.timezone),
            policy=self.policy,
            buttons=message.channel in self.buttons_on,
            language_hint=message.language,
        )
        return await apply(
            session, known=known, channel=message.channel, transition=transition, policy=self.policy, now=now
        )

    async def _say(
        self, session: AsyncSession, known: residents.Known, channel: str, text: str, now: datetime
    ) -> int:
        await outbox.enqueue(session, [_reply_row(known, channel, Reply(text))], now=now)
        return 1

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


def _buttons(reply: Reply) -> dict[str, object] | None:
    if not reply.choices:
        return None
    return {"question": reply.question, "choices": [[choice.label, choice.value] for choice in reply.choices]}


COMMAND_TEXT = {"stop": "STOP", "help": "HELP", "language": "LANGUAGE"}


def _engine_text(message: InboundMessage, catalogue: engine.Catalogue) -> str:
    """What the engine should read: bot commands become the words SMS residents would text."""
    if message.command is None:
        return message.text
    if message.command == "start":
        payload = message.text.strip()
        named = catalogue.surveys.get(payload.lower()) if payload else None
        if named is not None:
            return named.keyword  # a deep link names the survey by slug: t.me/<bot>?start=parks-2026
        return payload or "START"
    return COMMAND_TEXT.get(message.command, message.text)
