"""When a You Said, We Did message (or an invitation) may go: quiet hours, bank holidays, pre-election
periods and contact budgets. All times are passed in; local time is Europe/London.

In 2026 the clocks go forward on Sunday 29 March (01:00 GMT becomes 02:00 BST, at 01:00 UTC) and back on
Sunday 25 October (02:00 BST becomes 01:00 GMT, at 01:00 UTC).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.quiet_hours import QuietHours
from flows.sending_rules import (
    DEFAULT_BUDGETS,
    DEFAULT_QUIET_HOURS,
    INVITATION_BUDGET,
    YSWD_BUDGET,
    Budget,
    Purdah,
    next_allowed,
    purdah_blocks,
    within_budget,
)

LONDON = ZoneInfo("Europe/London")
SPRING_FORWARD = date(2026, 3, 29)
FALL_BACK = date(2026, 10, 25)
CHRISTMAS, BOXING_DAY_SUBSTITUTE = date(2026, 12, 25), date(2026, 12, 28)
GOOD_FRIDAY, EASTER_MONDAY = date(2026, 4, 3), date(2026, 4, 6)
BANK_HOLIDAYS = frozenset({GOOD_FRIDAY, EASTER_MONDAY, CHRISTMAS, BOXING_DAY_SUBSTITUTE})


def utc(year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def due_at(
    moment: datetime, *, quiet: QuietHours = DEFAULT_QUIET_HOURS, blocked: frozenset[date] = frozenset()
) -> datetime:
    return next_allowed(moment, quiet=quiet, blocked_dates=blocked, tz=LONDON)


# Quiet hours on ordinary days


def test_the_default_quiet_hours_are_nine_at_night_to_eight_in_the_morning() -> None:
    assert QuietHours.parse("21:00-08:00") == DEFAULT_QUIET_HOURS


def test_a_message_due_in_the_day_goes_at_once() -> None:
    noon = utc(2026, 11, 10, 12)
    assert due_at(noon) is noon


def test_a_message_due_at_night_waits_for_eight_in_the_morning_never_dropped() -> None:
    assert due_at(utc(2026, 11, 10, 21)) == utc(2026, 11, 11, 8)  # 21:00 is already quiet
    assert due_at(utc(2026, 11, 10, 23, 59)) == utc(2026, 11, 11, 8)
    assert due_at(utc(2026, 11, 11, 3)) == utc(2026, 11, 11, 8)
    assert due_at(utc(2026, 11, 11, 7, 59, 59)) == utc(2026, 11, 11, 8)


def test_the_last_minute_before_quiet_hours_and_eight_oclock_itself_are_allowed() -> None:
    assert due_at(utc(2026, 11, 10, 20, 59)) == utc(2026, 11, 10, 20, 59)
    assert due_at(utc(2026, 11, 10, 8)) == utc(2026, 11, 10, 8)


def test_eight_in_the_morning_local_is_seven_utc_in_summer_and_eight_utc_in_winter() -> None:
    assert due_at(utc(2026, 7, 1, 2)) == utc(2026, 7, 1, 7)
    assert due_at(utc(2026, 1, 15, 2)) == utc(2026, 1, 15, 8)


def test_quiet_hours_are_local_so_a_summer_evening_is_quiet_from_twenty_utc() -> None:
    assert due_at(utc(2026, 7, 1, 19, 59)) == utc(2026, 7, 1, 19, 59)  # 20:59 BST
    assert due_at(utc(2026, 7, 1, 20)) == utc(2026, 7, 2, 7)  # 21:00 BST


def test_the_answer_keeps_the_time_zone_it_was_given_in() -> None:
    evening = datetime(2026, 7, 1, 22, 0, tzinfo=LONDON)
    allowed = due_at(evening)
    assert allowed.tzinfo is LONDON
    assert allowed == datetime(2026, 7, 2, 8, 0, tzinfo=LONDON)


def test_quiet_hours_that_do_not_cross_midnight_end_the_same_day() -> None:
    lunch = QuietHours.parse("12:00-14:00")
    assert due_at(utc(2026, 11, 10, 12, 30), quiet=lunch) == utc(2026, 11, 10, 14)
    assert due_at(utc(2026, 11, 10, 23), quiet=lunch) == utc(2026, 11, 10, 23)


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="time-zone aware"):
        due_at(datetime(2026, 11, 10, 12))  # noqa: DTZ001


# The day the clocks go forward (Sunday 29 March 2026)


@pytest.mark.parametrize(
    ("due", "label"),
    [
        (utc(2026, 3, 28, 21), "21:00 GMT on Saturday"),
        (utc(2026, 3, 29, 0, 30), "00:30 GMT"),
        (utc(2026, 3, 29, 0, 59, 59), "00:59:59 GMT, a second before the jump"),
        (utc(2026, 3, 29, 1), "02:00 BST, the moment of the jump"),
        (utc(2026, 3, 29, 1, 30), "02:30 BST"),
        (utc(2026, 3, 29, 2), "03:00 BST"),
        (utc(2026, 3, 29, 6, 59, 59), "07:59:59 BST"),
    ],
)
def test_on_the_night_the_clocks_go_forward_messages_wait_for_eight_bst(due: datetime, label: str) -> None:
    assert due_at(due) == utc(2026, 3, 29, 7), label


def test_the_morning_after_the_clocks_go_forward_eight_oclock_is_seven_utc() -> None:
    assert due_at(utc(2026, 3, 29, 7)) == utc(2026, 3, 29, 7)
    assert due_at(utc(2026, 3, 27, 7)) == utc(2026, 3, 27, 8)  # the Friday before: still GMT


def test_quiet_hours_ending_in_the_hour_that_never_happens_end_at_the_jump() -> None:
    """With quiet hours 21:00-01:30 there is no 01:30 on 29 March: clocks go 00:59:59 -> 02:00."""
    early = QuietHours.parse("21:00-01:30")
    assert due_at(utc(2026, 3, 28, 23), quiet=early) == utc(2026, 3, 29, 1)
    assert due_at(utc(2026, 3, 29, 1), quiet=early) == utc(2026, 3, 29, 1)  # 02:00 BST: allowed


# The day the clocks go back (Sunday 25 October 2026)


@pytest.mark.parametrize(
    ("due", "label"),
    [
        (utc(2026, 10, 24, 20, 30), "21:30 BST on Saturday"),
        (utc(2026, 10, 24, 23, 30), "00:30 BST"),
        (utc(2026, 10, 25, 0, 30), "01:30 BST, the first time round"),
        (utc(2026, 10, 25, 1, 30), "01:30 GMT, the second time round"),
        (utc(2026, 10, 25, 2), "02:00 GMT"),
        (utc(2026, 10, 25, 3), "03:00 GMT"),
        (utc(2026, 10, 25, 7, 59), "07:59 GMT"),
    ],
)
def test_on_the_night_the_clocks_go_back_messages_wait_for_eight_gmt(due: datetime, label: str) -> None:
    assert due_at(due) == utc(2026, 10, 25, 8), label


def test_the_morning_after_the_clocks_go_back_eight_oclock_is_eight_utc() -> None:
    assert due_at(utc(2026, 10, 25, 8)) == utc(2026, 10, 25, 8)
    assert due_at(utc(2026, 10, 23, 7)) == utc(2026, 10, 23, 7)  # the Friday before: 08:00 BST


def test_quiet_hours_ending_in_the_repeated_hour_end_the_first_time_unless_that_has_passed() -> None:
    early = QuietHours.parse("21:00-01:30")
    assert due_at(utc(2026, 10, 24, 22), quiet=early) == utc(2026, 10, 25, 0, 30)  # 01:30 BST
    assert due_at(utc(2026, 10, 25, 1, 15), quiet=early) == utc(2026, 10, 25, 1, 30)  # 01:15 GMT: 01:30 GMT


# Bank holidays


def test_a_message_due_on_a_bank_holiday_waits_for_eight_the_next_working_morning() -> None:
    assert due_at(utc(2026, 12, 25, 12), blocked=BANK_HOLIDAYS) == utc(2026, 12, 26, 8)
    assert due_at(utc(2026, 4, 6, 12), blocked=BANK_HOLIDAYS) == utc(2026, 4, 7, 7)  # Easter Monday, BST


def test_a_message_due_the_night_before_a_bank_holiday_skips_the_whole_holiday() -> None:
    assert due_at(utc(2026, 12, 24, 22), blocked=BANK_HOLIDAYS) == utc(2026, 12, 26, 8)


def test_consecutive_blocked_days_are_all_skipped() -> None:
    christmas_week = frozenset(date(2026, 12, day) for day in (25, 26, 27, 28))
    assert due_at(utc(2026, 12, 24, 21, 30), blocked=christmas_week) == utc(2026, 12, 29, 8)


def test_without_night_quiet_hours_a_blocked_day_ends_at_midnight() -> None:
    lunch = QuietHours.parse("12:00-14:00")
    assert due_at(utc(2026, 12, 25, 9), quiet=lunch, blocked=BANK_HOLIDAYS) == utc(2026, 12, 26, 0)


def test_bank_holidays_are_local_dates() -> None:
    # 23:30 UTC on Easter Sunday is 00:30 BST on Easter Monday
    assert due_at(utc(2026, 4, 5, 23, 30), blocked=BANK_HOLIDAYS) == utc(2026, 4, 7, 7)


instants = st.datetimes(
    min_value=datetime(2026, 1, 1),  # noqa: DTZ001
    max_value=datetime(2027, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)
quiet_hours = st.sampled_from(["21:00-08:00", "22:00-07:30", "12:00-14:00", "21:00-01:30", "00:00-06:00"])
holidays = st.sets(st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 1, 2)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(due=instants, quiet_text=quiet_hours, blocked=holidays)
def test_any_message_is_sent_at_the_first_allowed_moment_and_never_dropped(
    due: datetime, quiet_text: str, blocked: set[date]
) -> None:
    quiet = QuietHours.parse(quiet_text)

    def allowed(moment: datetime) -> bool:
        local = moment.astimezone(LONDON)
        return local.date() not in blocked and not quiet.contains(local.time())

    sent = next_allowed(due, quiet=quiet, blocked_dates=blocked, tz=LONDON)

    assert sent >= due
    assert allowed(sent)
    if sent != due:
        assert not allowed(sent - timedelta(seconds=1)) or sent - timedelta(seconds=1) < due


# Pre-election periods

ELECTION = Purdah(date(2026, 3, 23), date(2026, 5, 7))  # to polling day, inclusive


def test_a_card_is_held_back_in_a_pre_election_period_unless_it_is_exempt() -> None:
    assert purdah_blocks(date(2026, 4, 20), [ELECTION], exempt=False)
    assert not purdah_blocks(date(2026, 4, 20), [ELECTION], exempt=True)


def test_the_pre_election_period_includes_its_first_and_last_days() -> None:
    assert not purdah_blocks(date(2026, 3, 22), [ELECTION], exempt=False)
    assert purdah_blocks(date(2026, 3, 23), [ELECTION], exempt=False)
    assert purdah_blocks(date(2026, 5, 7), [ELECTION], exempt=False)
    assert not purdah_blocks(date(2026, 5, 8), [ELECTION], exempt=False)


def test_no_periods_block_nothing_and_any_of_several_blocks() -> None:
    by_election = Purdah(date(2026, 9, 1), date(2026, 9, 24))
    assert not purdah_blocks(date(2026, 9, 10), [], exempt=False)
    assert purdah_blocks(date(2026, 9, 10), [ELECTION, by_election], exempt=False)


def test_a_time_is_read_as_a_local_date() -> None:
    # 23:30 UTC on 7 May is 00:30 BST on 8 May, the day after polling day
    assert not purdah_blocks(utc(2026, 5, 7, 23, 30), [ELECTION], exempt=False, tz=LONDON)
    assert purdah_blocks(utc(2026, 5, 6, 23, 30), [ELECTION], exempt=False, tz=LONDON)


def test_a_time_without_the_council_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="tz"):
        purdah_blocks(utc(2026, 4, 20, 12), [ELECTION], exempt=False)


def test_a_period_cannot_end_before_it_starts_and_lists_its_days_for_waiting_it_out() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        Purdah(date(2026, 5, 7), date(2026, 3, 23))
    days = list(ELECTION.days())
    assert days[0] == ELECTION.start
    assert days[-1] == ELECTION.end
    assert len(days) == 46
    # a held card waits until the morning after polling day
    assert due_at(utc(2026, 4, 20, 12), blocked=frozenset(days)) == utc(2026, 5, 8, 7)


# Contact budgets

NOW = utc(2026, 11, 10, 12)


def days_ago(*counts: float) -> list[datetime]:
    return [NOW - timedelta(days=count) for count in counts]


def test_the_default_budgets_are_two_invitations_and_four_updates_a_month() -> None:
    assert Budget("invitation", 2, 30) == INVITATION_BUDGET
    assert Budget("yswd", 4, 30) == YSWD_BUDGET
    assert DEFAULT_BUDGETS == {"invitation": INVITATION_BUDGET, "yswd": YSWD_BUDGET}


def test_a_third_invitation_in_thirty_days_is_refused() -> None:
    assert within_budget([], budget=INVITATION_BUDGET, now=NOW)
    assert within_budget(days_ago(3), budget=INVITATION_BUDGET, now=NOW)
    assert not within_budget(days_ago(3, 20), budget=INVITATION_BUDGET, now=NOW)


def test_a_fifth_you_said_we_did_message_in_thirty_days_is_refused() -> None:
    assert within_budget(days_ago(1, 2, 3), budget=YSWD_BUDGET, now=NOW)
    assert not within_budget(days_ago(1, 2, 3, 29), budget=YSWD_BUDGET, now=NOW)


def test_messages_older_than_the_window_no_longer_count() -> None:
    assert within_budget(days_ago(30, 45), budget=INVITATION_BUDGET, now=NOW)  # exactly 30 days: gone
    assert not within_budget(days_ago(29.99, 1), budget=INVITATION_BUDGET, now=NOW)


def test_messages_already_scheduled_later_count_too() -> None:
    sent = [NOW - timedelta(days=1), NOW + timedelta(hours=2)]
    assert not within_budget(sent, budget=INVITATION_BUDGET, now=NOW)


def test_invitations_never_use_up_the_budget_for_telling_people_what_changed() -> None:
    sent = {"invitation": days_ago(1, 2), "yswd": days_ago(1, 2, 3)}

    assert not within_budget(sent["invitation"], budget=DEFAULT_BUDGETS["invitation"], now=NOW)
    assert within_budget(sent["yswd"], budget=DEFAULT_BUDGETS["yswd"], now=NOW)


def test_updates_never_use_up_the_invitation_budget() -> None:
    sent = {"invitation": days_ago(10), "yswd": days_ago(1, 2, 3, 4)}

    assert within_budget(sent["invitation"], budget=DEFAULT_BUDGETS["invitation"], now=NOW)
    assert not within_budget(sent["yswd"], budget=DEFAULT_BUDGETS["yswd"], now=NOW)


def test_budgets_must_make_sense_and_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="negative"):
        Budget("yswd", -1, 30)
    with pytest.raises(ValueError, match="at least one day"):
        Budget("yswd", 4, 0)
    with pytest.raises(ValueError, match="time-zone aware"):
        within_budget([], budget=YSWD_BUDGET, now=datetime(2026, 11, 10, 12))  # noqa: DTZ001


def test_time_of_day_matters_not_only_the_date() -> None:
    midnight = datetime.combine(date(2026, 11, 10), time(0), tzinfo=UTC)
    assert within_budget([midnight - timedelta(days=30)], budget=Budget("yswd", 1, 30), now=midnight)
