"""The outbox sender: the only code that calls a channel's ``send``.

A row is claimed (status "sending") in its own short transaction before the provider call, so it is
sent at most once; a row still "sending" after a crash is reported as interrupted and never resent.
Replies to residents are claimed before bulk messages. Each channel has a token bucket counted in SMS
segments, so the provider's rate is used but never exceeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from channels.base import Button, OutboundMessage
from channels.errors import AddressInvalid, RecipientOptedOut, SendError
from store import outbox, residents
from store.db import Database

log = logging.getLogger(__name__)


class SendingChannel(Protocol):
    name: str

    async def send(self, message: OutboundMessage) -> str: ...


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._tokens = self.burst
        self._at = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def available(self) -> int:
        self._refill()
        return int(self._tokens)

    async def take(self, tokens: float) -> None:
        async with self._lock:
            self._refill()
            while self._tokens < min(tokens, self.burst):
                await asyncio.sleep((min(tokens, self.burst) - self._tokens) / self.rate)
                self._refill()
            self._tokens -= tokens


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Sender:
    db: Database
    channels: Mapping[str, SendingChannel]
    rates: Mapping[str, float] = field(default_factory=dict)  # tokens a second, per channel
    costs: Mapping[str, Callable[[str], float]] = field(default_factory=dict)  # tokens per text (default 1)
    button_data: Mapping[str, Callable[[str, str], str]] = field(default_factory=dict)  # (question, value)
    max_attempts: int = 5
    retry_base_seconds: float = 5.0
    batch: int = 50
    clock: Callable[[], datetime] = utc_now
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)
    _average_cost: dict[str, float] = field(default_factory=dict)
    _waiting: set[int] = field(default_factory=set)  # claimed in the batch being sent
    _handed: set[int] = field(default_factory=set)  # of those, handed to the provider

    def __post_init__(self) -> None:
        for name in self.channels:
            rate = self.rates.get(name)
            if rate:
                # a fifth of a second saved up: after a pause the sender never runs far ahead of the provider
                self._buckets[name] = TokenBucket(rate, burst=max(1.0, rate / 5))

    def wake(self) -> None:
        self._wake.set()

    async def run(self, idle_wait: float = 1.0) -> None:
        """Send until cancelled; sleeps when the outbox is empty until woken or ``idle_wait`` passes."""
        while True:
            self._wake.clear()
            try:
                sent = await self.drain_once()
            except Exception:
                log.exception("outbox drain failed; retrying")
                sent = 0
            if not sent:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), idle_wait)

    async def drain_once(self) -> int:
        """Claim and send what is due now on every channel; the number of rows handled."""
        handled = 0
        for name in self.channels:
            async with self.db.writing(), self.db.sessions() as session, session.begin():
                claimed = await outbox.claim_due(
                    session, now=self.clock(), channels=[name], limit=self._claim_limit(name)
                )
            if claimed:
                self._waiting.update(message.id for message in claimed)
                results = await asyncio.gather(*(self._send(message) for message in claimed))
                self._waiting.difference_update(message.id for message in claimed)
                self._handed.difference_update(message.id for message in claimed)
                sent = [result for result in results if result is not None]
                if sent:  # one transaction for the whole batch: the send path's main saving
                    async with self.db.writing(), self.db.sessions() as session, session.begin():
                        await outbox.mark_sent(session, sent, now=self.clock())
            handled += len(claimed)
        return handled

    def _claim_limit(self, channel: str) -> int:
        """Claim only what the provider's rate lets out now, counted in the channel's cost (SMS segments),
        so replies queued meanwhile are not stuck behind a long batch."""
        bucket = self._buckets.get(channel)
        if bucket is None:
            return self.batch
        average = self._average_cost.get(channel, 1.0)
        return max(1, min(self.batch, int(bucket.available() / average)))

    async def release_unsent(self) -> int:
        """On a clean stop: rows claimed but not yet handed to the provider go back to the queue (rows
        already with the provider stay "sending", and are reported at the next start)."""
        waiting = sorted(self._waiting - self._handed)
        if not waiting:
            return 0
        async with self.db.writing(), self.db.sessions() as session, session.begin():
            return await outbox.release(session, waiting, now=self.clock())

    async def drain_until_empty(self) -> int:
        total = 0
        while sent := await self.drain_once():
            total += sent
        return total

    async def _send(self, claimed: outbox.Claimed) -> tuple[int, str] | None:
        """Send one claimed row; (outbox id, provider id) when the provider accepted it."""
        channel = self.channels[claimed.channel]
        bucket = self._buckets.get(claimed.channel)
        if bucket is not None:
            cost_of = self.costs.get(claimed.channel)
            cost = cost_of(claimed.body) if cost_of else 1.0
            previous = self._average_cost.get(claimed.channel, cost)
            self._average_cost[claimed.channel] = 0.9 * previous + 0.1 * cost
            await bucket.take(cost)
        message = self._message(claimed)
        self._handed.add(claimed.id)
        context = {"outbox_id": claimed.id, "channel": claimed.channel, "attempt": claimed.attempts}
        try:
            provider_id = await channel.send(message)
        except SendError as error:
            await self._record_failure(claimed, error, context)
            return None
        except Exception as error:  # a bug or an unexpected SDK error: retry within the attempt limit
            log.exception("unexpected error while sending", extra=context)
            await self._record_failure(claimed, error, context)
            return None
        log.debug("sent", extra=context)
        return claimed.id, provider_id

    def _message(self, claimed: outbox.Claimed) -> OutboundMessage:
        extras = claimed.buttons or {}
        encode = self.button_data.get(claimed.channel)
        question = str(extras.get("question") or "")
        buttons = tuple(
            Button(label, encode(question, value) if encode else value)
            for label, value in extras.get("choices", [])
        ) + tuple(Button(label, "", url) for label, url in extras.get("links", []))
        return OutboundMessage(claimed.id, claimed.to, claimed.body, buttons, bool(extras.get("contact")))

    async def _record_failure(
        self, claimed: outbox.Claimed, error: Exception, context: dict[str, object]
    ) -> None:
        now = self.clock()
        code = error.provider_code if isinstance(error, SendError) else None
        description = f"{type(error).__name__}: {error}"
        retryable = not isinstance(error, SendError) or error.retryable
        async with self.db.writing(), self.db.sessions() as session, session.begin():
            if isinstance(error, RecipientOptedOut):
                await residents.mark_opted_out(session, resident_id=claimed.resident_id, at=now)
            if isinstance(error, AddressInvalid):
                await residents.mark_address_invalid(
                    session, address_id=claimed.address_id, reason=code or "invalid"
                )
            if retryable and claimed.attempts < self.max_attempts:
                delay = self.retry_base_seconds * 2 ** (claimed.attempts - 1) * random.uniform(0.8, 1.2)
                retry_after = getattr(error, "retry_after", None)
                if retry_after:
                    delay = max(delay, float(retry_after))
                await outbox.schedule_retry(
                    session,
                    outbox_id=claimed.id,
                    at=now + timedelta(seconds=delay),
                    error_code=code,
                    error=description,
                    now=now,
                )
                log.warning(
                    "send failed; will retry",
                    extra={**context, "error": type(error).__name__, "retry_in": round(delay, 2)},
                )
            else:
                if retryable:
                    description = f"gave up after {claimed.attempts} attempts: {description}"
                await outbox.mark_failed(
                    session, outbox_id=claimed.id, error_code=code, error=description, now=now
                )
                log.warning("send failed", extra={**context, "error": type(error).__name__, "code": code})
