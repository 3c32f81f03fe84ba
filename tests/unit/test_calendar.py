"""Working days on China's official calendar: 2026 holidays, make-up days, provisional years."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier import Deadline, WorkingDays, default_calendar

# 2026 as published by the State Council and carried by chinese_calendar 1.11.0.
NATIONAL_DAY_2026 = [date(2026, 10, d) for d in range(1, 8)]  # Thu Oct 1 to Wed Oct 7
MID_AUTUMN_2026 = [date(2026, 9, d) for d in (25, 26, 27)]  # Fri to Sun
SPRING_FESTIVAL_2026 = [date(2026, 2, d) for d in range(15, 24)]  # Sun Feb 15 to Mon Feb 23
MAKE_UP_DAYS_2026 = [
    date(2026, 1, 4),  # Sunday, New Year
    date(2026, 2, 14),  # Saturday, Spring Festival
    date(2026, 2, 28),  # Saturday, Spring Festival
    date(2026, 5, 9),  # Saturday, Labour Day
    date(2026, 9, 20),  # Sunday, National Day
    date(2026, 10, 10),  # Saturday, National Day
]


@pytest.fixture
def calendar() -> WorkingDays:
    return WorkingDays()


def test_the_library_holds_the_2026_dates_these_tests_rely_on() -> None:
    # If a library upgrade changes the published data, say so here rather than in
    # a dozen puzzling failures below.
    assert chinese_calendar.__version__ == "1.11.0"
    for day in NATIONAL_DAY_2026 + MID_AUTUMN_2026 + SPRING_FESTIVAL_2026:
        assert chinese_calendar.is_holiday(day), day
    for day in MAKE_UP_DAYS_2026:
        assert day.weekday() >= 5, day
        assert chinese_calendar.is_workday(day), day


@pytest.mark.parametrize("day", NATIONAL_DAY_2026 + MID_AUTUMN_2026 + SPRING_FESTIVAL_2026)
def test_public_holidays_are_not_working_days(calendar: WorkingDays, day: date) -> None:
    assert not calendar.is_working_day(day)


@pytest.mark.parametrize("day", MAKE_UP_DAYS_2026)
def test_make_up_weekend_days_are_working_days(calendar: WorkingDays, day: date) -> None:
    assert calendar.is_working_day(day)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 10, 8), True),  # Thursday right after the holiday: back to work
        (date(2026, 10, 11), False),  # Sunday after the Saturday make-up day
        (date(2026, 9, 28), True),  # Monday between Mid-Autumn and National Day
        (date(2026, 9, 19), False),  # Saturday, no make-up
        (date(2026, 2, 24), True),  # Tuesday after the Spring Festival
        (date(2026, 3, 3), True),  # an ordinary Tuesday
        (date(2026, 3, 7), False),  # an ordinary Saturday
    ],
)
def test_ordinary_days_around_the_holidays(calendar: WorkingDays, day: date, working: bool) -> None:
    assert calendar.is_working_day(day) is working


def test_every_day_of_2026_agrees_with_the_library(calendar: WorkingDays) -> None:
    day = date(2026, 1, 1)
    while day.year == 2026:
        assert calendar.is_working_day(day) == chinese_calendar.is_workday(day), day
        day += timedelta(days=1)


@pytest.mark.parametrize(
    ("day", "covered"),
    [
        (date(2003, 12, 31), False),
        (date(2004, 1, 1), True),
        (date(2026, 12, 31), True),
        (date(2027, 1, 1), False),
    ],
)
def test_coverage_is_the_published_years(calendar: WorkingDays, day: date, covered: bool) -> None:
    assert calendar.covers(day) is covered
    assert (calendar.first_year, calendar.last_year) == (2004, 2026)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2027, 1, 1), True),  # New Year's Day 2027, unpublished: a plain Friday
        (date(2027, 1, 2), False),  # Saturday
        (date(2027, 10, 1), True),  # National Day 2027, unpublished: a plain Friday
        (date(2003, 12, 27), False),  # Saturday before the covered years
        (date(2003, 12, 29), True),  # Monday before the covered years
    ],
)
def test_beyond_coverage_monday_to_friday_work(
    calendar: WorkingDays, day: date, working: bool
) -> None:
    assert calendar.is_working_day(day) is working


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (date(2026, 9, 30), 1, date(2026, 10, 8)),  # National Day skipped
        (date(2026, 9, 30), 3, date(2026, 10, 10)),  # Oct 8, 9, then the make-up Saturday
        (date(2026, 9, 30), 4, date(2026, 10, 12)),
        (date(2026, 9, 24), 1, date(2026, 9, 28)),  # Mid-Autumn weekend skipped
        (date(2026, 9, 18), 1, date(2026, 9, 20)),  # Friday to the make-up Sunday
        (date(2026, 2, 13), 1, date(2026, 2, 14)),  # Friday to the make-up Saturday
        (date(2026, 2, 14), 1, date(2026, 2, 24)),  # Spring Festival skipped
        (date(2026, 3, 6), 1, date(2026, 3, 9)),  # an ordinary Friday to Monday
        (date(2026, 10, 3), 1, date(2026, 10, 8)),  # a holiday start does not count
        (date(2026, 12, 28), 3, date(2026, 12, 31)),
    ],
)
def test_add_counts_from_the_next_day(
    calendar: WorkingDays, start: date, days: int, expected: date
) -> None:
    assert calendar.add(start, days) == Deadline(day=expected, provisional=False)


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (date(2026, 9, 30), date(2026, 9, 30)),  # a working day is its own deadline
        (date(2026, 10, 1), date(2026, 10, 8)),  # a holiday rolls to the next working day
        (date(2026, 10, 10), date(2026, 10, 10)),  # a make-up Saturday is a working day
    ],
)
def test_add_zero_days(calendar: WorkingDays, start: date, expected: date) -> None:
    assert calendar.add(start, 0) == Deadline(day=expected, provisional=False)


def test_a_60_working_day_window_over_national_day(calendar: WorkingDays) -> None:
    # A points-registration approval on 2026-09-01 with the catalog's 60-day window:
    # 21 working days left in September (make-up Sep 20 in, Sep 25 out), 18 in October
    # (from Oct 8, make-up Oct 10 in), 20 in November to the 27th, so the 60th is Nov 30.
    deadline = calendar.add(date(2026, 9, 1), 60)
    assert deadline == Deadline(day=date(2026, 11, 30), provisional=False)
    counted = chinese_calendar.get_workdays(date(2026, 9, 2), deadline.day)
    assert len(counted) == 60


def test_a_window_into_2027_is_provisional(calendar: WorkingDays) -> None:
    # 2026-12-31 (Thursday) is the last known day; 2027-01-01 is taken as a plain Friday.
    assert calendar.add(date(2026, 12, 30), 2) == Deadline(date(2027, 1, 1), provisional=True)
    assert calendar.add(date(2026, 12, 30), 3) == Deadline(date(2027, 1, 4), provisional=True)
    assert calendar.add(date(2026, 11, 2), 60).provisional
    assert not calendar.add(date(2026, 12, 30), 1).provisional


def test_add_zero_on_an_uncovered_day_is_provisional(calendar: WorkingDays) -> None:
    assert calendar.add(date(2027, 3, 1), 0) == Deadline(date(2027, 3, 1), provisional=True)


def test_a_start_before_coverage_counting_into_it_is_not_provisional(
    calendar: WorkingDays,
) -> None:
    # Only the days examined count, and those are all in 2004 (Jan 1 is a holiday).
    assert calendar.add(date(2003, 12, 31), 1) == Deadline(date(2004, 1, 2), provisional=False)


def test_add_refuses_negative_days(calendar: WorkingDays) -> None:
    with pytest.raises(ValueError, match="0 or more"):
        calendar.add(date(2026, 5, 6), -1)


def test_add_takes_a_datetime_and_returns_a_date(calendar: WorkingDays) -> None:
    deadline = calendar.add(datetime(2026, 9, 30, 17, 45), 1)
    assert deadline.day == date(2026, 10, 8)
    assert type(deadline.day) is date


@pytest.mark.parametrize(
    ("start", "end", "count"),
    [
        (date(2026, 9, 30), date(2026, 10, 10), 3),  # Oct 8, 9, 10
        (date(2026, 9, 30), date(2026, 10, 7), 0),  # all holiday
        (date(2026, 9, 29), date(2026, 9, 30), 1),  # end counts, start does not
        (date(2026, 9, 30), date(2026, 9, 30), 0),
        (date(2026, 10, 10), date(2026, 9, 30), 0),  # end before start
        (date(2026, 2, 13), date(2026, 2, 28), 6),  # Feb 14, 24, 25, 26, 27, 28
        (date(2026, 12, 31), date(2027, 1, 8), 6),  # uncovered 2027: Mon-Fri
    ],
)
def test_between_counts_start_exclusive_end_inclusive(
    calendar: WorkingDays, start: date, end: date, count: int
) -> None:
    assert calendar.between(start, end) == count


def test_default_calendar_is_shared() -> None:
    assert default_calendar() is default_calendar()


@pytest.mark.property
@settings(max_examples=200, deadline=None)
@given(
    start=st.dates(min_value=date(2004, 1, 1), max_value=date(2026, 9, 30)),
    days=st.integers(min_value=0, max_value=60),
)
def test_add_and_between_agree_with_the_library(start: date, days: int) -> None:
    calendar = default_calendar()
    deadline = calendar.add(start, days)
    assert chinese_calendar.is_workday(deadline.day)
    if days == 0:
        assert chinese_calendar.get_workdays(start, deadline.day) == [deadline.day]
        return
    assert calendar.between(start, deadline.day) == days
    assert len(chinese_calendar.get_workdays(start + timedelta(days=1), deadline.day)) == days
    assert not deadline.provisional
