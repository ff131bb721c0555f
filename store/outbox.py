"""The outbox: every message Loopline will send, claimed once, with its delivery status.

Status only moves forward (``STATUS_RANK``): a late "sent" callback never overwrites "delivered".
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import AddressRow, Base, OutboxRow, ResidentRow

PRIORITY_REPLY = 0
PRIORITY_BULK = 1

STATUS_RANK = {
    "queued": 0,
    "sending": 1,
    "interrupted": 1,  # was being sent when the process stopped: reported, never resent
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
    "skipped": 3,
}

# the one kind of message an opted-out resident may still get: the confirmation of their opt-out
OPT_OUT_CONFIRMATION = "opt_out_confirmation"


@dataclass(frozen=True, slots=True)
class NewMessage:
    resident_id: int
    address_id: int
    channel: str
    body: str
    kind: str
    priority: int = PRIORITY_REPLY
    buttons: dict[str, Any] | None = None


async def enqueue(session: AsyncSession, messages: Sequence[NewMessage], *, now: datetime) -> None:
    if not messages:
        return
    await session.execute(
        Base.metadata.tables["outbox"].insert(),
        [
            {
                "resident_id": m.resident_id,
                "address_id": m.address_id,
                "channel": m.channel,
                "body": m.body,
                "buttons": m.buttons,
                "kind": m.kind,
                "priority": m.priority,
                "status": "queued",
                "status_rank": 0,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for m in messages
        ],
    )


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    resident_id: int
    address_id: int
    channel: str
    to: str
    body: str
    buttons: dict[str, Any] | None
    kind: str
    attempts: int  # including this one


async def claim_due(
    session: AsyncSession, *, now: datetime, channels: Collection[str], limit: int = 50
) -> list[Claimed]:
    """Mark up to ``limit`` due messages as being sent and return them, replies before bulk.

    Messages for residents who have opted out since they were queued, or to addresses known to be
    invalid, are marked skipped here: the opt-out is checked again at the moment of sending.
    """
    opted_out = and_(ResidentRow.opted_out_at.is_not(None), OutboxRow.kind != OPT_OUT_CONFIRMATION)
    query = (
        select(OutboxRow, AddressRow.address, AddressRow.invalid_reason, opted_out.label("opted_out"))
        .join(AddressRow, AddressRow.id == OutboxRow.address_id)
        .join(ResidentRow, ResidentRow.id == OutboxRow.resident_id)
        .where(
            OutboxRow.status == "queued", OutboxRow.next_attempt_at <= now, OutboxRow.channel.in_(channels)
        )
        .order_by(OutboxRow.priority, OutboxRow.id)
        .limit(limit)
        .with_for_update(of=OutboxRow, skip_locked=True)
    )
    claimed: list[Claimed] = []
    skipped: dict[str, list[int]] = {"opted_out": [], "address_invalid": []}
    for row, address, invalid_reason, is_opted_out in (await session.execute(query)).all():
        if is_opted_out:
            skipped["opted_out"].append(row.id)
        elif invalid_reason:
            skipped["address_invalid"].append(row.id)
        else:
            claimed.append(
                Claimed(
                    row.id,
                    row.resident_id,
                    row.address_id,
                    row.channel,
                    address,
                    row.body,
                    row.buttons,
                    row.kind,
                    row.attempts + 1,
                )
            )
    for reason, ids in skipped.items():
        if ids:
            await _move(session, ids, "skipped", now, error=reason)
    if claimed:
        await session.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_([m.id for m in claimed]))
            .values(status="sending", status_rank=1, attempts=OutboxRow.attempts + 1, updated_at=now)
        )
    return claimed


async def mark_sent(session: AsyncSession, sent: Sequence[tuple[int, str]], *, now: datetime) -> None:
    """Record (outbox id, provider id) pairs the provider accepted, in two statements whatever their number.
    A delivery report that arrived first (a higher status) is kept."""
    if not sent:
        return
    outbox = Base.metadata.tables["outbox"]
    rows = [{"oid": outbox_id, "pid": provider_id} for outbox_id, provider_id in sent]
    await session.execute(
        update(outbox)
        .where(outbox.c.id == bindparam("oid"))
        .values(provider_id=bindparam("pid"), sent_at=now, updated_at=now),
        rows,
    )
    await _move(session, [outbox_id for outbox_id, _ in sent], "sent", now)


async def schedule_retry(
    session: AsyncSession, *, outbox_id: int, at: datetime, error_code: str | None, error: str, now: datetime
) -> None:
    await session.execute(
        update(OutboxRow)
        .where(OutboxRow.id == outbox_id, OutboxRow.status == "sending")
        .values(
            status="queued",
            status_rank=0,
            next_attempt_at=at,
            error_code=error_code,
            error=error[:200],
            updated_at=now,
        )
    )


async def mark_failed(
    session: AsyncSession, *, outbox_id: int, error_code: str | None, error: str, now: datetime
) -> None:
    await _move(session, [outbox_id], "failed", now, error=error, error_code=error_code)


@dataclass(frozen=True, slots=True)
class Reported:
    outbox_id: int
    resident_id: int
    address_id: int


async def apply_status(
    session: AsyncSession,
    *,
    outbox_id: int | None,
    provider_id: str | None,
    status: str,
    error_code: str | None,
    now: datetime,
) -> Reported | None:
    """Record a delivery report, found by our id or else the provider's; never moves status backwards.

    Returns whom the message was for, or None for an unknown message.
    """
    match = OutboxRow.id == outbox_id if outbox_id is not None else OutboxRow.provider_id == provider_id
    columns = select(OutboxRow.id, OutboxRow.resident_id, OutboxRow.address_id)
    found = (await session.execute(columns.where(match))).first()
    if found is None:
        return None
    values: dict[str, Any] = {"status": status, "status_rank": STATUS_RANK[status], "updated_at": now}
    if error_code:
        values["error_code"] = error_code
    if provider_id:
        values["provider_id"] = func.coalesce(OutboxRow.provider_id, provider_id)
    await session.execute(
        update(OutboxRow)
        .where(OutboxRow.id == found.id, OutboxRow.status_rank < STATUS_RANK[status])
        .values(**values)
    )
    return Reported(found.id, found.resident_id, found.address_id)


async def interrupt_unfinished_sends(session: AsyncSession, *, now: datetime) -> list[int]:
    """Rows left 'sending' by a process that stopped mid-send: mark them interrupted, never resend.

    The provider may or may not have the message; a later delivery callback still moves it forward.
    """
    ids = list(await session.scalars(select(OutboxRow.id).where(OutboxRow.status == "sending")))
    if ids:
        await _move(session, ids, "interrupted", now, error="process stopped during the send")
    return ids


async def _move(
    session: AsyncSession,
    ids: list[int],
    status: str,
    now: datetime,
    *,
    error: str | None = None,
    error_code: str | None = None,
) -> None:
    values: dict[str, Any] = {"status": status, "status_rank": STATUS_RANK[status], "updated_at": now}
    if error is not None:
        values["error"] = error[:200]
    if error_code is not None:
        values["error_code"] = error_code
    await session.execute(
        update(OutboxRow)
        .where(
            OutboxRow.id.in_(ids),
            or_(OutboxRow.status_rank < STATUS_RANK[status], OutboxRow.status == "sending"),
        )
        .values(**values)
    )


async def counts_by_status(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status))
    return {status: count for status, count in rows.all()}


@dataclass(frozen=True, slots=True)
class SentMessage:
    body: str
    question: str  # the question it asked ("" for none)
    choices: tuple[tuple[str, str], ...]  # (label, value)


async def find_sent(session: AsyncSession, *, channel: str, provider_id: str) -> SentMessage | None:
    """A message we sent, by the provider's id for it (e.g. to show which button was chosen)."""
    row = (
        await session.execute(
            select(OutboxRow.body, OutboxRow.buttons).where(
                OutboxRow.channel == channel, OutboxRow.provider_id == provider_id
            )
        )
    ).first()
    if row is None:
        return None
    extras = row.buttons or {}
    choices = tuple((str(label), str(value)) for label, value in extras.get("choices", []))
    return SentMessage(row.body, str(extras.get("question") or ""), choices)


async def release(session: AsyncSession, ids: Sequence[int], *, now: datetime) -> int:
    """Put claimed rows that never reached the provider back in the queue, as if never claimed."""
    result = await session.execute(
        update(OutboxRow)
        .where(OutboxRow.id.in_(list(ids)), OutboxRow.status == "sending")
        .values(status="queued", status_rank=0, attempts=OutboxRow.attempts - 1, updated_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
