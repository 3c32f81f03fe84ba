"""Working time: half a working day exact across weekends, holidays, make-up days, lunch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier import BEIJING, OfficeHours, WorkingDays

HALF = 0.5


def bj(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BEIJING)


@pytest.fixture(scope="module")
def hours() -> OfficeHours:
    return OfficeHours.parse("09:00-12:00,13:00-17:00", WorkingDays())


def test_a_working_day_is_the_sum_of_the_periods(hours: OfficeHours) -> None:
    assert hours.day_length == timedelta(hours=7)
    assert str(hours) == "09:00-12:00,13:00-17:00"


@pytest.mark.parametrize(
    ("received", "due"),
    [
        # Friday 16:00: 1 h on Friday, 2.5 h on Monday.
        (bj(2026, 12, 4, 16), bj(2026, 12, 7, 11, 30)),
        # Inside the morning: 2 h to noon, 1.5 h after lunch.
        (bj(2026, 12, 7, 10), bj(2026, 12, 7, 14, 30)),
        # Before opening: counting starts at 09:00.
        (bj(2026, 12, 7, 7, 15), bj(2026, 12, 7, 13, 30)),
        # During lunch: counting starts at 13:00.
        (bj(2026, 12, 7, 12, 30), bj(2026, 12, 7, 16, 30)),
        # After closing: counting starts the next morning.
        (bj(2026, 12, 7, 18), bj(2026, 12, 8, 13, 30)),
        # Saturday and Sunday count nothing.
        (bj(2026, 12, 5, 10), bj(2026, 12, 7, 13, 30)),
        # The eve of National Day (Oct 1-7 holidays): due on Thursday Oct 8.
        (bj(2026, 9, 30, 16), bj(2026, 10, 8, 11, 30)),
        # Inside the holiday: counting starts on Oct 8.
        (bj(2026, 10, 3, 10), bj(2026, 10, 8, 13, 30)),
        # Friday Oct 9, 16:00: Saturday Oct 10 is a make-up working day and counts.
        (bj(2026, 10, 9, 16), bj(2026, 10, 10, 11, 30)),
        # Saturday Sep 19 is not; Sunday Sep 20 (make-up) is.
        (bj(2026, 9, 19, 10), bj(2026, 9, 20, 13, 30)),
    ],
)
def test_half_a_working_day_online(hours: OfficeHours, received: datetime, due: datetime) -> None:
    got = hours.add(received, HALF)
    assert got == due
    assert got.tzinfo is UTC
    assert hours.decision_due(received, "online", HALF) == due


def test_utc_and_beijing_times_are_the_same_moment(hours: OfficeHours) -> None:
    received = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)  # 16:00 in Beijing
    assert hours.add(received, HALF) == datetime(2026, 12, 7, 3, 30, tzinfo=UTC)


def test_seconds_are_kept(hours: OfficeHours) -> None:
    received = bj(2026, 12, 7, 10) + timedelta(seconds=12.345678)
    assert hours.add(received, HALF) == bj(2026, 12, 7, 14, 30) + timedelta(seconds=12.345678)


def test_a_count_ending_with_a_period_is_due_at_its_end(hours: OfficeHours) -> None:
    assert hours.add(bj(2026, 12, 4, 16), 1 / 7) == bj(2026, 12, 4, 17)
    assert hours.add(bj(2026, 12, 4, 16), 1.0) == bj(2026, 12, 7, 16)


def test_zero_working_days_is_the_next_office_moment(hours: OfficeHours) -> None:
    assert hours.add(bj(2026, 12, 7, 10), 0) == bj(2026, 12, 7, 10)
    assert hours.add(bj(2026, 12, 5, 10), 0) == bj(2026, 12, 7, 9)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (bj(2026, 12, 7, 9), bj(2026, 12, 7, 12)),  # at opening
        (bj(2026, 12, 7, 11, 59), bj(2026, 12, 7, 12)),
        (bj(2026, 12, 7, 12, 30), bj(2026, 12, 7, 17)),  # lunch: the afternoon's end
        (bj(2026, 12, 7, 17), bj(2026, 12, 8, 12)),  # at closing: the next period
        (bj(2026, 12, 4, 18), bj(2026, 12, 7, 12)),  # Friday evening: Monday noon
        (bj(2026, 10, 1, 10), bj(2026, 10, 8, 12)),  # National Day
        (bj(2026, 10, 10, 14), bj(2026, 10, 10, 17)),  # make-up Saturday
    ],
)
def test_counter_decisions_are_due_by_the_end_of_the_period(
    hours: OfficeHours, received: datetime, due: datetime
) -> None:
    assert hours.decision_due(received, "counter", HALF) == due


def test_between_counts_office_time_only(hours: OfficeHours) -> None:
    assert hours.between(bj(2026, 12, 4, 16), bj(2026, 12, 7, 11, 30)) == pytest.approx(HALF)
    assert hours.between(bj(2026, 9, 30, 9), bj(2026, 10, 9, 9)) == pytest.approx(2.0)
    assert hours.between(bj(2026, 12, 7, 12), bj(2026, 12, 7, 13)) == 0
    late = hours.between(bj(2026, 12, 7, 16, 30), bj(2026, 12, 7, 9, 30))
    assert late == pytest.approx(-6 / 7)  # 2.5 h before noon, 3.5 h after


def test_a_count_into_an_unpublished_year_is_provisional(hours: OfficeHours) -> None:
    last = hours.calendar.last_year
    inside = bj(last, 6, 1, 10)
    assert not hours.provisional(inside, hours.add(inside, HALF))
    eve = bj(last, 12, 31, 16)
    assert hours.provisional(eve, hours.add(eve, HALF))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "at least one period"),
        (" , ", "at least one period"),
        ("9-12", "not a period"),
        ("09:00-08:00", "ends before it starts"),
        ("09:00-09:00", "ends before it starts"),
        ("09:00-12:00,11:00-13:00", "without overlapping"),
        ("13:00-17:00,09:00-12:00", "without overlapping"),
        ("24:00-24:30", "within one day"),
        ("09:00-24:01", "within one day"),
        (",".join(["09:00-09:01"] * 9), "at most 8 periods"),
        ("09:00-12:00" + " " * 300, "at most 200 characters"),
    ],
)
def test_malformed_office_hours_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OfficeHours.parse(text)


def test_a_whole_day_and_touching_periods_are_allowed() -> None:
    assert OfficeHours.parse("00:00-24:00").day_length == timedelta(hours=24)
    assert str(OfficeHours.parse(" 09:00-12:00 , 12:00-13:00 ")) == "09:00-12:00,12:00-13:00"


@pytest.mark.parametrize("days", [-0.5, float("nan"), float("inf"), 400.0])
def test_counts_out_of_range_are_refused(hours: OfficeHours, days: float) -> None:
    with pytest.raises(ValueError, match="working_days"):
        hours.add(bj(2026, 12, 7, 10), days)


def test_naive_datetimes_are_refused(hours: OfficeHours) -> None:
    with pytest.raises(ValueError, match="time zone"):
        hours.add(datetime(2026, 12, 7, 10), HALF)


_MOMENTS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 11, 30), timezones=st.just(BEIJING)
)


@settings(max_examples=200, deadline=None)
@given(start=_MOMENTS, days=st.floats(min_value=0, max_value=5), later=st.floats(0, 3))
def test_add_and_between_agree_and_add_keeps_order(
    hours: OfficeHours, start: datetime, days: float, later: float
) -> None:
    due = hours.add(start, days)
    assert due >= start
    assert hours.between(start, due) == pytest.approx(days, abs=1e-9)
    assert hours.add(start + timedelta(days=later), days) >= due
