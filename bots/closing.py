"""Closing the loop: You Said, We Did cards from draft to delivery, and the pulse that follows.

The state of every sending lives in the ``sends`` table. The scheduler only wakes ``send_due`` up (every
30 seconds and at start-up), so a restart neither loses a sending nor repeats one: planning a sending
writes all its outbox rows and marks it planned in one transaction.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bots.results import write_summary
from flows.definition import Survey, text_in
from flows.quiet_hours import QuietHours
from flows.sending_rules import Purdah, next_allowed
from flows.themes import ThemeList, suggest_themes
from flows.yswd import Card, Channel, parse_card, render_message, sms_preview, telegram_preview
from store import cards, responses, surveys
from store.db import Database

log = logging.getLogger(__name__)

SEND_CHANNELS: tuple[Channel, ...] = ("sms", "telegram")
PLAN_CHUNK = 5_000  # residents per planning transaction


@dataclass(frozen=True, slots=True)
class Rules:
    """The council's sending rules for bulk messages."""

    timezone: ZoneInfo
    quiet_hours: QuietHours
    bank_holidays: frozenset[date]
    purdah: tuple[Purdah, ...]
    budget: int  # You Said, We Did messages per resident per window
    budget_window: timedelta
    price_per_segment: Decimal

    def deliver_at(self, due: datetime, card: Card) -> datetime:
        """When a sending due at ``due`` may go: after quiet hours, bank holidays and (unless the card is
        exempt) any pre-election period. Never dropped, only moved."""
        blocked = set(self.bank_holidays)
        if not card.exempt_from_purdah:
            for period in self.purdah:
                blocked.update(period.days())
        return next_allowed(due, quiet=self.quiet_hours, blocked_dates=blocked, tz=self.timezone)


@dataclass(frozen=True, slots=True)
class Closing:
    db: Database
    rules: Rules
    themes: ThemeList | None
    clock: Callable[[], datetime]
    on_queued: Callable[[], None] = lambda: None

    # -- the card's life ---------------------------------------------------------------------------

    async def create(self, text: str, source: str, *, author: str) -> int:
        card, _ = await self._read(text, source)
        async with self.db.writing(), self.db.sessions() as session, session.begin():
            return await cards.create(
                session,
                survey=card.survey,
                definition=card.model_dump(mode="json"),
                author=author,
                now=self.clock(),
            )

    async def edit(self, card_id: int, text: str, source: str, *, actor: str) -> None:
        card, _ = await self._read(text, source)
        async with self.db.writing(), self.db.sessions() as session, session.begin():
            await cards.edit(
                session,
                card_id=card_id,
                definition=card.model_dump(mode="json"),
                actor=actor,
                now=self.clock(),
            )

    async def approve(self, card_id: int, *, approver: str) -> None:
        async with self.db.writing(), self.db.sessions() as session, session.begin():
            await cards.approve(session, card_id=card_id, approver=approver, now=self.clock())

    async def schedule(self, card_id: int, *, at: datetime, actor: str) -> tuple[int, datetime]:
        """Schedule an approved card; returns the sending and when it will really start."""
        record = await self._record(card_id)
        card = Card.model_validate(record.definition)
        async with self.db.writing(), self.db.sessions() as session, session.begin():
            send_id = await cards.schedule(session, card_id=card_id, due_at=at, actor=actor, now=self.clock())
        return send_id, self.rules.deliver_at(at, card)

    async def cancel(self, card_id: int, *, actor: str) -> int:
        async with self.db.writing(), self.db.sessions() as session, session.begin():
            return await cards.cancel(session, card_id=card_id, actor=actor, now=self.clock())

    # -- what the comms team sees before it commits ------------------------------------------------

    async def preview(self, card_id: int) -> str:
        record = await self._record(card_id)
        card = Card.model_validate(record.definition)
        survey = await self._survey(card.survey)
        results = io.StringIO()
        async with self.db.sessions() as session:
            audience = await self._audience(session, card, survey)
            reach = await cards.count_recipients(session, survey=card.survey, audience=audience)
            await write_summary(session, survey, results)
        lines = [
            f"Card {card_id} ({record.state}) for {survey.slug}: {card.text('title', card.default_language)}",
            f"Recipients before opt-outs and contact budgets: {sum(reach.values())} "
            f"({', '.join(f'{c} {n}' for c, n in sorted(reach.items())) or 'nobody yet'})",
        ]
        for channel in SEND_CHANNELS:
            for language in card.languages:
                rendered = render_message(
                    card, channel=channel, language=language, values=_values(card, survey)
                )
                lines.append(f"\n--- {channel}, {language} ---\n{rendered.text}")
                if channel == "sms":
                    sms = sms_preview(
                        rendered.text,
                        recipients=reach.get("sms", 0),
                        price_per_segment=self.rules.price_per_segment,
                    )
                    lines.append(
                        f"[{sms.encoding}, {sms.length} characters, {sms.segments} segment(s) each; "
                        f"{sms.total_segments} segments for the send, about £{sms.cost:.2f}]"
                    )
                    for fix in sms.forcing_ucs2:
                        offer = f" (use {fix.replacement!r})" if fix.replacement else ""
                        lines.append(f"  {fix.character!r} forces UCS-2{offer}")
                    if sms.gsm_safe_text and sms.gsm_safe_cost is not None:
                        lines.append(
                            f"  with GSM-safe characters: {sms.gsm_safe_segments} segment(s), "
                            f"about £{sms.gsm_safe_cost:.2f}"
                        )
                else:
                    tg = telegram_preview(rendered.text)
                    lines.append(f"[{tg.length} of 4096 characters; buttons: Yes, Partly, No]")
        lines.append(f"\n--- counts from the results you can quote in 'You said' ---\n{results.getvalue()}")
        return "\n".join(lines)

    async def status(self, card_id: int) -> str:
        record = await self._record(card_id)
        async with self.db.sessions() as session:
            sends = await cards.sends_for(session, card_id=card_id)
            lines = [
                f"Card {card_id}: {record.state} (author {record.author}, approved by "
                f"{record.approver or 'nobody yet'})"
            ]
            for send in sends:
                counts = await cards.progress(session, send_id=send.id)
                reasons = await cards.skip_reasons(session, send_id=send.id)
                total = sum(counts.values())
                done = sum(
                    counts.get(s, 0) for s in ("sent", "delivered", "undelivered", "failed", "skipped")
                )
                bar = _bar(done, total)
                lines.append(f"Sending {send.id}: {send.state}, due {send.due_at:%Y-%m-%d %H:%M} UTC")
                lines.append(
                    f"  {bar} {done}/{total}  " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                )
                if reasons:
                    lines.append("  skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
            pulse = await cards.pulse_counts(session, card_id=card_id)
            by_ward = await cards.pulse_by_ward(session, card_id=card_id)
        if pulse:
            lines.append(
                "Did this answer your concern? " + ", ".join(f"{k} {v}" for k, v in sorted(pulse.items()))
            )
            for ward, counts in sorted(by_ward.items()):
                lines.append(f"  {ward}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        return "\n".join(lines)

    # -- the scheduler's part ----------------------------------------------------------------------

    async def send_due(self) -> int:
        """Plan every sending whose time has come (also ones missed while Loopline was down).

        Recipients are written in chunks of residents, each in its own short transaction, so webhooks
        are not held up by a large sending; a chunk written twice (after a crash) adds nothing, and the
        sending is marked planned only once every chunk is in.
        """
        now = self.clock()
        async with self.db.sessions() as session:
            due_sends = await cards.due_sends(session, now=now)
        for due in due_sends:
            await self._plan(due, now)
        if due_sends:
            self.on_queued()
        return len(due_sends)

    async def _plan(self, due: cards.DueSend, now: datetime) -> None:
        async with self.db.sessions() as session:
            record = await cards.get(session, card_id=due.card_id)
            assert record is not None
            card = Card.model_validate(record.definition)
            survey = next(s for s in await surveys.all_surveys(session) if s.slug == card.survey)
            audience = await self._audience(session, card, survey)
            bounds = await cards.participant_range(session, survey=card.survey)
        messages = []
        for channel in SEND_CHANNELS:
            for language in card.languages:
                rendered = render_message(
                    card, channel=channel, language=language, values=_values(card, survey)
                )
                buttons: dict[str, object] | None = None
                if rendered.buttons:
                    buttons = {"question": "pulse", "choices": [list(b) for b in rendered.buttons]}
                    if card.public_url:  # Telegram: the card's public page as a link button
                        buttons["links"] = [[card.text("title", language), card.public_url]]
                messages.append(cards.Message(channel, language, rendered.text, buttons))
        deliver_at = self.rules.deliver_at(max(due.due_at, now), card)
        low, high = bounds or (0, -1)
        for start in range(low, high + 1, PLAN_CHUNK):
            async with self.db.writing(), self.db.sessions() as session, session.begin():
                await cards.plan(
                    session,
                    send=due,
                    survey=card.survey,
                    audience=audience,
                    messages=messages,
                    default_language=card.default_language,
                    deliver_at=deliver_at,
                    budget=self.rules.budget,
                    budget_window=self.rules.budget_window,
                    now=now,
                    residents=(start, start + PLAN_CHUNK),
                )
        async with self.db.writing(), self.db.sessions() as session, session.begin():
            counts = await cards.finish_plan(session, send_id=due.send_id, now=now)
            await cards.audit(
                session,
                actor="loopline",
                action="planned",
                subject=f"card:{due.card_id}",
                at=now,
                details={"send": due.send_id, **counts},
            )
        log.info("sending planned", extra={"send": due.send_id, **counts})

    # -- helpers -----------------------------------------------------------------------------------

    async def _audience(self, session: AsyncSession, card: Card, survey: Survey) -> cards.Audience:
        matching: list[int] | None = None
        if card.audience.themes:
            if self.themes is None:
                raise cards.CardError("this card is for answers on themes, but no themes are configured")
            text_questions = [(survey.slug, q.id) for q in survey.questions if q.type == "text"]
            wanted = set(card.audience.themes)
            matching = [
                response_id
                for response_id, answer in await responses.text_answers(
                    session,
                    survey=survey.slug,
                    questions=text_questions,
                )
                if wanted & {s.theme for s in suggest_themes(answer, self.themes)}
            ]
        return cards.Audience(
            answers=card.audience.questions,
            at_most=card.audience.max_rating,
            wards=card.audience.wards,
            responses=matching,
        )

    async def _record(self, card_id: int) -> cards.CardRecord:
        async with self.db.sessions() as session:
            record = await cards.get(session, card_id=card_id)
        if record is None:
            raise cards.CardError(f"no card {card_id} (see: loopline yswd list)")
        return record

    async def _survey(self, slug: str) -> Survey:
        async with self.db.sessions() as session:
            found = {s.slug: s for s in await surveys.all_surveys(session)}
        if slug not in found:
            raise cards.CardError(f"no survey {slug!r} (see: loopline survey list)")
        return found[slug]

    async def _read(self, text: str, source: str) -> tuple[Card, Survey]:
        """Validate a card file, then again against its survey's questions (file, field and line)."""
        probe = parse_card(text, source)
        survey = await self._survey(probe.survey)
        return parse_card(text, source, survey=survey), survey


def _values(card: Card, survey: Survey) -> Mapping[str, str]:
    """What ``((placeholders))`` in a card can use."""
    language = survey.default_language
    return {
        "survey_title": text_in(survey.title, language, language),
        "survey_closes": f"{survey.closes:%-d %B %Y}",
        "lead_contact": card.lead_contact,
        "lead": survey.lead.name,
    }


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = width if total == 0 else round(width * done / total)
    return "[" + "#" * filled + "." * (width - filled) + "]"
