"""When an unprompted message (a survey invitation, a You Said, We Did card) may go to a resident.

- Quiet hours and bank holidays: a message due then waits for the next allowed local time; it is never
  dropped (``next_allowed``). Local time is the council's time zone, passed in, so the days the clocks
  change are handled by ``zoneinfo``.
- Pre-election periods ("purdah"): nothing goes out unless the card is exempt, with a reason
  (``purdah_blocks``).
- Contact budgets, against consultation fatigue: at most so many messages of one kind per resident in a
  rolling window (``within_budget``). Each kind has its own budget, so invitations never use up the
  budget for telling people what changed.

Pure: the time is always passed in, and every datetime must be time-zone aware.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from flows.quiet_hours import QuietHours

__all__ = [
    "DEFAULT_BUDGETS",
    "DEFAULT_QUIET_HOURS",
    "INVITATION_BUDGET",
    "YSWD_BUDGET",
    "Budget",
    "BudgetKind",
    "Purdah",
    "next_allowed",
    "purdah_blocks",
    "within_budget",
]

DEFAULT_QUIET_HOURS = QuietHours(time(21, 0), time(8, 0))


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be time-zone aware, not {moment.isoformat()}")


# Quiet hours and bank holidays


def next_allowed(
    at: datetime, *, quiet: QuietHours, blocked_dates: Collection[date], tz: ZoneInfo
) -> datetime:
    """``at`` itself when a message may go then, otherwise the first later moment it may.

    A message may go when the local time (in ``tz``) is outside ``quiet`` and the local date is not in
    ``blocked_dates`` (bank holidays). The answer is in ``at``'s time zone.
    """
    _require_aware(at, "at")
    local = at.astimezone(tz)
    day, now = local.date(), local.time()
    if day not in blocked_dates and not quiet.contains(now):
        return at
    if day in blocked_dates:
        day, wall = day + timedelta(days=1), _first_allowed_time(quiet)
    elif quiet.start <= quiet.end or now < quiet.end:
        wall = quiet.end  # this quiet spell ends later today
    else:
        day, wall = day + timedelta(days=1), quiet.end  # it started this evening and ends tomorrow
    while day in blocked_dates:
        day, wall = day + timedelta(days=1), _first_allowed_time(quiet)
    return _first_instant_showing(day, wall, tz, not_before=at).astimezone(at.tzinfo)


def _first_allowed_time(quiet: QuietHours) -> time:
    """The earliest local time of a day outside quiet hours."""
    return quiet.end if quiet.contains(time(0)) else time(0)


def _first_instant_showing(day: date, wall: time, tz: ZoneInfo, *, not_before: datetime) -> datetime:
    """The first moment (UTC), not before ``not_before``, when local clocks show ``wall`` on ``day``.

    When the clocks go back the wall time happens twice: the first time, unless that has passed (a
    message due at 01:15 the second time round waits for 01:30 the second time round). When they go
    forward it may not happen at all (01:30 on the last Sunday of March in London): then it is the moment
    of the jump, when clocks first show a later time.
    """
    naive = datetime.combine(day, wall)
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == naive:
        second = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
        return first if first >= not_before else max(second, not_before)
    # In the gap: fold=1 reads the wall time with the offset after the jump, which is before the jump.
    # Search the whole seconds between the two readings for the jump.
    low, high = math.floor(naive.replace(tzinfo=tz, fold=1).timestamp()), math.ceil(first.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


# Pre-election periods


@dataclass(frozen=True, slots=True)
class Purdah:
    """A pre-election period, from ``start`` to ``end`` inclusive (local dates)."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"a pre-election period cannot end ({self.end}) before it starts ({self.start})")

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end

    def days(self) -> Iterator[date]:
        """Every date in the period (to pass as ``blocked_dates`` when messages should wait it out)."""
        day = self.start
        while day <= self.end:
            yield day
            day += timedelta(days=1)


def purdah_blocks(
    at: datetime | date, periods: Iterable[Purdah], *, exempt: bool, tz: ZoneInfo | None = None
) -> bool:
    """Whether a pre-election period stops a message at ``at``.

    ``exempt`` is true only for a card exempt with a reason (``Card.exempt_from_purdah``). ``at`` is a
    local date, or an aware datetime together with the council's ``tz``.
    """
    if exempt:
        return False
    if isinstance(at, datetime):
        _require_aware(at, "at")
        if tz is None:
            raise ValueError("purdah_blocks needs tz to know the local date of a datetime")
        day = at.astimezone(tz).date()
    else:
        day = at
    return any(period.covers(day) for period in periods)


# Contact budgets

BudgetKind = Literal["invitation", "yswd"]


@dataclass(frozen=True, slots=True)
class Budget:
    """At most ``limit`` messages of ``kind`` to one resident in any ``window_days`` days."""

    kind: BudgetKind
    limit: int
    window_days: int

    def __post_init__(self) -> None:
        if self.limit < 0:
            raise ValueError("a budget's limit must not be negative")
        if self.window_days < 1:
            raise ValueError("a budget's window must be at least one day")


INVITATION_BUDGET = Budget("invitation", 2, 30)
YSWD_BUDGET = Budget("yswd", 4, 30)
DEFAULT_BUDGETS: dict[BudgetKind, Budget] = {"invitation": INVITATION_BUDGET, "yswd": YSWD_BUDGET}


def within_budget(sent_at: Sequence[datetime], *, budget: Budget, now: datetime) -> bool:
    """Whether one more message of ``budget.kind`` may go to a resident ``now``.

    ``sent_at`` are the times this resident was sent messages of that kind (only that kind: the budgets
    are independent). Those in the last ``window_days`` days count, as do any already scheduled later; a
    message sent exactly ``window_days`` ago no longer counts.
    """
    _require_aware(now, "now")
    since = now - timedelta(days=budget.window_days)
    return sum(1 for moment in sent_at if moment > since) < budget.limit
