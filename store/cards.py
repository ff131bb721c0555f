"""You Said, We Did cards, their sendings, the audit log and the closure pulse."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import (
    AddressRow,
    AnswerRow,
    AuditRow,
    Base,
    CardRow,
    OutboxRow,
    PulseRow,
    ResidentRow,
    ResponseRow,
    SendRow,
    SurveyRow,
)
from store.outbox import PRIORITY_BULK
from store.sql import insert_ignoring_duplicates

KIND = "you_said_we_did"
OUTBOX = Base.metadata.tables["outbox"]


class CardError(ValueError):
    """A card step that is not allowed (e.g. approving your own card); the message says why."""


@dataclass(frozen=True, slots=True)
class CardRecord:
    id: int
    survey: str
    definition: dict[str, Any]
    state: str
    author: str
    approver: str | None
    purdah_exempt_reason: str | None


async def audit(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    subject: str,
    at: datetime,
    details: Mapping[str, Any] | None = None,
) -> None:
    session.add(
        AuditRow(at=at, actor=actor, action=action, subject=subject, details=dict(details or {}) or None)
    )
    await session.flush()


async def create(
    session: AsyncSession,
    *,
    survey: str,
    definition: Mapping[str, Any],
    author: str,
    now: datetime,
    purdah_exempt_reason: str | None = None,
) -> int:
    survey_id = await session.scalar(select(SurveyRow.id).where(SurveyRow.slug == survey))
    if survey_id is None:
        raise CardError(f"no survey {survey!r}")
    card = CardRow(
        survey_id=survey_id,
        definition=dict(definition),
        state="draft",
        author=author,
        approver=None,
        purdah_exempt_reason=purdah_exempt_reason,
        created_at=now,
        updated_at=now,
    )
    session.add(card)
    await session.flush()
    await audit(session, actor=author, action="created", subject=f"card:{card.id}", at=now)
    return card.id


async def get(session: AsyncSession, *, card_id: int) -> CardRecord | None:
    row = (
        await session.execute(
            select(CardRow, SurveyRow.slug)
            .join(SurveyRow, SurveyRow.id == CardRow.survey_id)
            .where(CardRow.id == card_id)
        )
    ).first()
    if row is None:
        return None
    card, slug = row
    return CardRecord(
        card.id, slug, card.definition, card.state, card.author, card.approver, card.purdah_exempt_reason
    )


async def listing(session: AsyncSession) -> list[CardRecord]:
    rows = await session.execute(
        select(CardRow, SurveyRow.slug)
        .join(SurveyRow, SurveyRow.id == CardRow.survey_id)
        .order_by(CardRow.id)
    )
    return [
        CardRecord(c.id, slug, c.definition, c.state, c.author, c.approver, c.purdah_exempt_reason)
        for c, slug in rows.all()
    ]


async def edit(
    session: AsyncSession, *, card_id: int, definition: Mapping[str, Any], actor: str, now: datetime
) -> None:
    """Change a card. An approved card goes back to draft: it needs approving again."""
    card = await _card(session, card_id)
    if card.state not in ("draft", "approved"):
        raise CardError(f"card {card_id} is {card.state}; cancel its sending before editing it")
    card.definition, card.state, card.approver, card.updated_at = dict(definition), "draft", None, now
    await audit(session, actor=actor, action="edited", subject=f"card:{card_id}", at=now)


async def approve(session: AsyncSession, *, card_id: int, approver: str, now: datetime) -> None:
    """Maker-checker: a second person approves; the author never approves their own card."""
    card = await _card(session, card_id)
    if card.author == approver:
        raise CardError("the author cannot approve their own card: ask a colleague with the comms role")
    if card.state != "draft":
        raise CardError(f"card {card_id} is {card.state}, not a draft")
    card.state, card.approver, card.updated_at = "approved", approver, now
    await audit(session, actor=approver, action="approved", subject=f"card:{card_id}", at=now)


async def schedule(
    session: AsyncSession, *, card_id: int, due_at: datetime, actor: str, now: datetime
) -> int:
    card = await _card(session, card_id)
    if card.state != "approved":
        raise CardError(f"card {card_id} is {card.state}: only an approved card can be scheduled")
    send = SendRow(
        card_id=card_id,
        due_at=due_at,
        state="scheduled",
        recipients=None,
        scheduled_by=actor,
        created_at=now,
        planned_at=None,
    )
    session.add(send)
    card.state, card.updated_at = "scheduled", now
    await session.flush()
    await audit(
        session,
        actor=actor,
        action="scheduled",
        subject=f"card:{card_id}",
        at=now,
        details={"send": send.id, "due_at": due_at.isoformat()},
    )
    return send.id


async def cancel(session: AsyncSession, *, card_id: int, actor: str, now: datetime) -> int:
    """Stop a card's sending: messages not yet sent are skipped. Returns how many were stopped."""
    card = await _card(session, card_id)
    send_ids = list(
        await session.scalars(
            select(SendRow.id).where(SendRow.card_id == card_id, SendRow.state.in_(("scheduled", "planned")))
        )
    )
    if not send_ids:
        raise CardError(f"card {card_id} has no sending to cancel")
    await session.execute(update(SendRow).where(SendRow.id.in_(send_ids)).values(state="cancelled"))
    stopped = await session.execute(
        update(OUTBOX)
        .where(OUTBOX.c.send_id.in_(send_ids), OUTBOX.c.status == "queued")
        .values(status="skipped", status_rank=3, error="cancelled", updated_at=now)
    )
    card.state, card.updated_at = "approved", now
    count = int(stopped.rowcount or 0)  # type: ignore[attr-defined]
    await audit(
        session,
        actor=actor,
        action="cancelled",
        subject=f"card:{card_id}",
        at=now,
        details={"messages_stopped": count},
    )
    return count


async def _card(session: AsyncSession, card_id: int) -> CardRow:
    card = await session.get(CardRow, card_id, with_for_update=True)
    if card is None:
        raise CardError(f"no card {card_id}")
    return card


@dataclass(frozen=True, slots=True)
class DueSend:
    send_id: int
    card_id: int
    due_at: datetime


async def due_sends(session: AsyncSession, *, now: datetime) -> list[DueSend]:
    """Sendings whose time has come and whose recipients are not yet planned (including any missed
    while Loopline was down)."""
    rows = await session.execute(
        select(SendRow.id, SendRow.card_id, SendRow.due_at)
        .where(SendRow.state == "scheduled", SendRow.due_at <= now)
        .order_by(SendRow.due_at)
        .with_for_update(skip_locked=True)
    )
    return [DueSend(i, c, d) for i, c, d in rows.all()]


@dataclass(frozen=True, slots=True)
class Audience:
    """Who of a survey's participants a card is for (all of them when every field is empty)."""

    answers: Mapping[str, Collection[str]]  # question id -> answers (any of)
    at_most: Mapping[str, int]  # scale question id -> highest rating
    wards: Collection[str]  # answers to the survey's "ward" question
    responses: Collection[int] | None  # response ids (e.g. free text on a theme); None: no such filter


def _audience_filter(survey: str, audience: Audience) -> Any:
    conditions: list[Any] = [SurveyRow.slug == survey]
    for question, allowed in audience.answers.items():
        conditions.append(_answer_exists(question, AnswerRow.value.in_(list(allowed))))
    for question, highest in audience.at_most.items():
        conditions.append(_answer_exists(question, cast(AnswerRow.value, Integer) <= highest))
    if audience.wards:
        conditions.append(_answer_exists("ward", AnswerRow.value.in_(list(audience.wards))))
    if audience.responses is not None:
        conditions.append(ResponseRow.id.in_(list(audience.responses)))
    return and_(*conditions)


def _answer_exists(question: str, value_test: Any) -> Any:
    return exists().where(
        AnswerRow.response_id == ResponseRow.id,
        AnswerRow.question == question,
        AnswerRow.status == "answered",
        value_test,
    )


async def count_recipients(session: AsyncSession, *, survey: str, audience: Audience) -> dict[str, int]:
    """Participants the card would reach, by channel (one per person), before opt-outs and budgets."""
    query = (
        select(ResponseRow.channel, func.count(func.distinct(ResponseRow.resident_id)))
        .join(SurveyRow, SurveyRow.id == ResponseRow.survey_id)
        .where(_audience_filter(survey, audience))
        .group_by(ResponseRow.channel)
    )
    return {channel: count for channel, count in (await session.execute(query)).all()}


@dataclass(frozen=True, slots=True)
class Message:
    channel: str
    language: str
    body: str
    buttons: dict[str, Any] | None


async def plan(
    session: AsyncSession,
    *,
    send: DueSend,
    survey: str,
    audience: Audience,
    messages: Sequence[Message],
    default_language: str,
    deliver_at: datetime,
    budget: int,
    budget_window: timedelta,
    now: datetime,
    residents: tuple[int, int],
) -> None:
    """Write one outbox row per recipient whose resident id is in ``[residents[0], residents[1])``,
    set-based: queued for ``deliver_at``, or skipped with the reason (opted out, invalid address, over
    the contact budget). Each recipient is reached once (a repeated call adds nothing), on the channel
    they took part on, in the language they used (else ``default_language``)."""
    recent = (
        select(func.count())
        .select_from(OUTBOX)
        .where(
            OUTBOX.c.resident_id == ResponseRow.resident_id,
            OUTBOX.c.kind == KIND,
            OUTBOX.c.status != "skipped",
            OUTBOX.c.created_at > now - budget_window,
        )
        .scalar_subquery()
    )
    reason = case(
        (ResidentRow.opted_out_at.is_not(None), literal("opted_out")),
        (AddressRow.invalid_reason.is_not(None), literal("address_invalid")),
        (recent >= budget, literal("contact_budget")),
        else_=literal(None, String),
    )
    languages = {m.language for m in messages}
    for message in messages:
        language_match = ResponseRow.language == message.language
        if message.language == default_language:
            language_match = or_(language_match, ResponseRow.language.not_in(languages))
        chosen = (
            select(
                ResponseRow.resident_id,
                AddressRow.id,
                literal(message.channel),
                literal(message.body),
                literal(message.buttons, OutboxRow.buttons.type),
                literal(KIND),
                literal(PRIORITY_BULK),
                case((reason.is_(None), literal("queued")), else_=literal("skipped")),
                case((reason.is_(None), literal(0)), else_=literal(3)),
                literal(0),
                literal(deliver_at, OutboxRow.next_attempt_at.type),
                literal(now, OutboxRow.created_at.type),
                literal(now, OutboxRow.updated_at.type),
                literal(send.send_id),
                reason,
            )
            .join(SurveyRow, SurveyRow.id == ResponseRow.survey_id)
            .join(ResidentRow, ResidentRow.id == ResponseRow.resident_id)
            .join(
                AddressRow,
                and_(
                    AddressRow.resident_id == ResponseRow.resident_id,
                    AddressRow.channel == ResponseRow.channel,
                ),
            )
            .where(
                _audience_filter(survey, audience),
                ResponseRow.channel == message.channel,
                language_match,
                ResponseRow.resident_id >= residents[0],
                ResponseRow.resident_id < residents[1],
            )
        )
        await session.execute(
            insert_ignoring_duplicates(session, OutboxRow).from_select(
                [
                    "resident_id",
                    "address_id",
                    "channel",
                    "body",
                    "buttons",
                    "kind",
                    "priority",
                    "status",
                    "status_rank",
                    "attempts",
                    "next_attempt_at",
                    "created_at",
                    "updated_at",
                    "send_id",
                    "error",
                ],
                chosen,
            )
        )


async def participant_range(session: AsyncSession, *, survey: str) -> tuple[int, int] | None:
    """The lowest and highest resident ids among a survey's participants (to plan in chunks)."""
    row = (
        await session.execute(
            select(func.min(ResponseRow.resident_id), func.max(ResponseRow.resident_id))
            .join(SurveyRow, SurveyRow.id == ResponseRow.survey_id)
            .where(SurveyRow.slug == survey)
        )
    ).first()
    if row is None or row[0] is None:
        return None
    return int(row[0]), int(row[1])


async def finish_plan(session: AsyncSession, *, send_id: int, now: datetime) -> dict[str, int]:
    """Mark a sending planned once all its rows are written; its recipients by status."""
    totals = await progress(session, send_id=send_id)
    await session.execute(
        update(SendRow)
        .where(SendRow.id == send_id)
        .values(state="planned", planned_at=now, recipients=sum(totals.values()))
    )
    return totals


async def progress(session: AsyncSession, *, send_id: int) -> dict[str, int]:
    """Recipients of a sending by status (queued, sent, delivered, failed, skipped...)."""
    rows = await session.execute(
        select(OUTBOX.c.status, func.count()).where(OUTBOX.c.send_id == send_id).group_by(OUTBOX.c.status)
    )
    return {status: count for status, count in rows.all()}


async def skip_reasons(session: AsyncSession, *, send_id: int) -> dict[str, int]:
    rows = await session.execute(
        select(OUTBOX.c.error, func.count())
        .where(OUTBOX.c.send_id == send_id, OUTBOX.c.status == "skipped")
        .group_by(OUTBOX.c.error)
    )
    return {reason or "unknown": count for reason, count in rows.all()}


async def sends_for(session: AsyncSession, *, card_id: int) -> list[SendRow]:
    return list(await session.scalars(select(SendRow).where(SendRow.card_id == card_id).order_by(SendRow.id)))


async def record_pulse(
    session: AsyncSession, *, resident_id: int, answer: str, now: datetime, within: timedelta
) -> int | None:
    """Store a resident's pulse answer for the latest card sent to them within ``within`` that they
    have not answered yet; the card id, or None when there is no such card."""
    card_id = await session.scalar(
        select(SendRow.card_id)
        .join(OUTBOX, OUTBOX.c.send_id == SendRow.id)
        .where(
            OUTBOX.c.resident_id == resident_id,
            OUTBOX.c.status.in_(("sent", "delivered")),
            OUTBOX.c.sent_at > now - within,
            ~exists().where(PulseRow.card_id == SendRow.card_id, PulseRow.resident_id == resident_id),
        )
        .order_by(OUTBOX.c.sent_at.desc())
        .limit(1)
    )
    if card_id is None:
        return None
    session.add(PulseRow(card_id=card_id, resident_id=resident_id, answer=answer, at=now))
    await session.flush()
    return int(card_id)


async def pulse_counts(session: AsyncSession, *, card_id: int) -> dict[str, int]:
    rows = await session.execute(
        select(PulseRow.answer, func.count()).where(PulseRow.card_id == card_id).group_by(PulseRow.answer)
    )
    return {answer: count for answer, count in rows.all()}


@dataclass(frozen=True, slots=True)
class Loop:
    survey: str
    closes: Any  # date
    participants: int
    told: int  # participants who have been sent a You Said, We Did message
    cards: int


async def loops(session: AsyncSession) -> list[Loop]:
    """For every survey: how many took part, and how many have been told what changed."""
    participants = (
        select(func.count(func.distinct(ResponseRow.resident_id)))
        .where(ResponseRow.survey_id == SurveyRow.id)
        .scalar_subquery()
    )
    told = (
        select(func.count(func.distinct(OUTBOX.c.resident_id)))
        .select_from(
            OUTBOX.join(SendRow, SendRow.id == OUTBOX.c.send_id).join(CardRow, CardRow.id == SendRow.card_id)
        )
        .where(CardRow.survey_id == SurveyRow.id, OUTBOX.c.status.in_(("sent", "delivered")))
        .scalar_subquery()
    )
    card_count = (
        select(func.count()).select_from(CardRow).where(CardRow.survey_id == SurveyRow.id).scalar_subquery()
    )
    rows = await session.execute(
        select(SurveyRow.slug, SurveyRow.closes, participants, told, card_count).order_by(SurveyRow.closes)
    )
    return [Loop(slug, closes, p or 0, t or 0, c or 0) for slug, closes, p, t, c in rows.all()]


async def published(session: AsyncSession) -> list[tuple[CardRecord, dict[str, int]]]:
    """Cards that have been approved (and may have been sent), newest first, with their pulse counts."""
    found = []
    for record in reversed(await listing(session)):
        if record.approver is not None and record.state in ("approved", "scheduled", "sent"):
            found.append((record, await pulse_counts(session, card_id=record.id)))
    return found


async def scheduled(session: AsyncSession) -> list[tuple[SendRow, str, dict[str, Any]]]:
    """Sendings not yet finished or cancelled, with their card's survey and definition, by date."""
    rows = await session.execute(
        select(SendRow, SurveyRow.slug, CardRow.definition)
        .join(CardRow, CardRow.id == SendRow.card_id)
        .join(SurveyRow, SurveyRow.id == CardRow.survey_id)
        .where(SendRow.state.in_(("scheduled", "planned")))
        .order_by(SendRow.due_at)
    )
    return [(send, slug, definition) for send, slug, definition in rows.all()]


async def shared_participants(session: AsyncSession, *, survey_a: str, survey_b: str) -> int:
    """Residents who took part in both surveys (they would hear from both)."""

    def took_part(slug: str) -> Any:
        return (
            select(ResponseRow.resident_id)
            .join(SurveyRow, SurveyRow.id == ResponseRow.survey_id)
            .where(SurveyRow.slug == slug)
        )

    both = took_part(survey_a).intersect(took_part(survey_b)).subquery()
    return int(await session.scalar(select(func.count()).select_from(both)) or 0)


async def pulse_by_ward(session: AsyncSession, *, card_id: int) -> dict[str, dict[str, int]]:
    """Pulse answers per ward (the answer to the card's survey question "ward"; "(no ward)" otherwise)."""
    ward = (
        select(AnswerRow.value)
        .join(ResponseRow, ResponseRow.id == AnswerRow.response_id)
        .where(
            ResponseRow.resident_id == PulseRow.resident_id,
            ResponseRow.survey_id == CardRow.survey_id,
            AnswerRow.question == "ward",
            AnswerRow.status == "answered",
        )
        .order_by(AnswerRow.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(ward, PulseRow.answer, func.count())
        .join(CardRow, CardRow.id == PulseRow.card_id)
        .where(PulseRow.card_id == card_id)
        .group_by(ward, PulseRow.answer)
    )
    found: dict[str, dict[str, int]] = {}
    for place, answer, count in rows.all():
        found.setdefault(place or "(no ward)", {})[answer] = count
    return found
