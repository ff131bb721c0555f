"""The log of accepted inbound messages, which makes provider redelivery harmless."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from store.models import InboundRow
from store.sql import insert_ignoring_duplicates


async def record_once(
    session: AsyncSession,
    *,
    channel: str,
    provider_id: str,
    address_id: int | None,
    body: str,
    received_at: datetime,
) -> int | None:
    """Store an inbound message; None when this provider id was already stored (a duplicate).

    On PostgreSQL a concurrent duplicate waits for the first transaction and then sees the conflict.
    """
    insert = insert_ignoring_duplicates(session, InboundRow).values(
        channel=channel, provider_id=provider_id, address_id=address_id, body=body, received_at=received_at
    )
    inbound_id: int | None = await session.scalar(insert.returning(InboundRow.id))
    return inbound_id
