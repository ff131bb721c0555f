"""Residents, their addresses, and the conversation state the engine keeps for them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flows.state import Resident, Session
from store.models import AddressRow, Base, ResidentRow
from store.sql import insert_ignoring_duplicates


@dataclass(frozen=True, slots=True)
class Known:
    """A resident as the engine sees them, with the ids needed to save what happens next."""

    resident_id: int
    address_id: int
    resident: Resident


def to_state(resident: Resident) -> dict[str, Any]:
    return {
        "session": resident.session.to_json() if resident.session else None,
        "completed": sorted(resident.completed),
    }


def from_row(row: ResidentRow) -> Resident:
    return _resident(row.opted_out_at, row.language, row.state)


def _resident(opted_out_at: datetime | None, language: str | None, state: dict[str, Any] | None) -> Resident:
    state = state or {}
    session = state.get("session")
    return Resident(
        opted_out=opted_out_at is not None,
        language=language,
        session=Session.from_json(session) if session else None,
        completed=frozenset(state.get("completed", ())),
    )


_residents = Base.metadata.tables["residents"]
_addresses = Base.metadata.tables["addresses"]


async def find(session: AsyncSession, *, channel: str, address: str, lock: bool = True) -> Known | None:
    """The resident behind an address; ``lock`` holds their row until commit (PostgreSQL) so two
    messages from one person are handled one after the other."""
    query = (
        select(
            _residents.c.id,
            _residents.c.opted_out_at,
            _residents.c.language,
            _residents.c.state,
            _addresses.c.id,
        )
        .join_from(_residents, _addresses, _addresses.c.resident_id == _residents.c.id)
        .where(_addresses.c.channel == channel, _addresses.c.address == address)
    )
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=_residents)
    found = (await session.execute(query)).first()
    if found is None:
        return None
    resident_id, opted_out_at, language, state, address_id = found
    return Known(resident_id, address_id, _resident(opted_out_at, language, state))


async def find_or_create(session: AsyncSession, *, channel: str, address: str, now: datetime) -> Known:
    """The resident behind an address, creating a new person on first contact (safe under races)."""
    known = await find(session, channel=channel, address=address)
    if known is not None:
        return known
    fresh = Resident()
    resident_id = await session.scalar(
        _residents.insert()
        .values(created_at=now, opted_out_at=None, language=None, state=to_state(fresh))
        .returning(_residents.c.id)
    )
    assert resident_id is not None
    new_address = insert_ignoring_duplicates(session, AddressRow).values(
        resident_id=resident_id, channel=channel, address=address, created_at=now
    )
    address_id = await session.scalar(new_address.returning(AddressRow.id))
    if address_id is None:  # another request created this address first: use theirs
        await session.execute(delete(ResidentRow).where(ResidentRow.id == resident_id))
        known = await find(session, channel=channel, address=address)
        assert known is not None
        return known
    return Known(resident_id, address_id, fresh)


async def save(
    session: AsyncSession, *, before: Known, resident: Resident, due_at: datetime | None, now: datetime
) -> None:
    """Write the engine's new view of a resident (state, language, opt-out)."""
    values: dict[str, Any] = {
        "state": to_state(resident),
        "language": resident.language,
        "session_due_at": due_at,
    }
    if resident.opted_out != before.resident.opted_out:
        values["opted_out_at"] = now if resident.opted_out else None
    await session.execute(_residents.update().where(_residents.c.id == before.resident_id).values(**values))


async def mark_opted_out(session: AsyncSession, *, resident_id: int, at: datetime) -> None:
    """Opt a resident out on a provider's word (e.g. Twilio 21610): everywhere, from now on."""
    await session.execute(
        update(ResidentRow)
        .where(ResidentRow.id == resident_id, ResidentRow.opted_out_at.is_(None))
        .values(opted_out_at=at)
    )


async def mark_address_invalid(session: AsyncSession, *, address_id: int, reason: str) -> None:
    await session.execute(update(AddressRow).where(AddressRow.id == address_id).values(invalid_reason=reason))


@dataclass(frozen=True, slots=True)
class Due:
    resident_id: int
    address_id: int
    channel: str
    resident: Resident


async def due_sessions(session: AsyncSession, *, now: datetime, limit: int = 500) -> Sequence[Due]:
    """Residents whose survey in progress needs a reminder or has expired, with their latest address."""
    query = (
        select(ResidentRow, AddressRow.id, AddressRow.channel)
        .join(AddressRow, AddressRow.resident_id == ResidentRow.id)
        .where(ResidentRow.session_due_at <= now)
        .order_by(ResidentRow.session_due_at, AddressRow.id.desc())
        .limit(limit)
    )
    seen: dict[int, Due] = {}
    for row, address_id, channel in (await session.execute(query)).all():
        seen.setdefault(row.id, Due(row.id, address_id, channel, from_row(row)))
    return list(seen.values())


async def link_phone(session: AsyncSession, *, known: Known, phone: str, now: datetime) -> Known:
    """Make a shared phone number (E.164) part of the same person as ``known``'s address.

    If another resident already has that number, ``known``'s address moves to them, so one opt-out or
    contact limit covers both channels; an opt-out on either side is kept.
    """
    owner = await find(session, channel="sms", address=phone)
    if owner is None:
        await session.execute(
            insert_ignoring_duplicates(session, AddressRow).values(
                resident_id=known.resident_id, channel="sms", address=phone, created_at=now
            )
        )
        return known
    if owner.resident_id == known.resident_id:
        return known
    await session.execute(
        update(AddressRow).where(AddressRow.id == known.address_id).values(resident_id=owner.resident_id)
    )
    resident = owner.resident
    if known.resident.opted_out and not resident.opted_out:
        await mark_opted_out(session, resident_id=owner.resident_id, at=now)
        resident = Resident(
            opted_out=True, language=resident.language, session=None, completed=resident.completed
        )
    return Known(owner.resident_id, known.address_id, resident)


async def has_address(session: AsyncSession, *, resident_id: int, channel: str) -> bool:
    found = await session.scalar(
        select(_addresses.c.id).where(
            _addresses.c.resident_id == resident_id, _addresses.c.channel == channel
        )
    )
    return found is not None
