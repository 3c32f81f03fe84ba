"""Working days on China's official calendar, make-up working days included."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache

# The library ships no py.typed; the two names used here are narrowed where they are read.
import chinese_calendar  # type: ignore[import-untyped]

__all__ = ["Deadline", "WorkingDays", "default_calendar"]

_ONE_DAY = timedelta(days=1)
_FRIDAY = 4  # date.weekday(): Monday is 0


@dataclass(frozen=True)
class Deadline:
    """A date reached by counting working days, and whether it may still move.

    The State Council publishes each year's public holidays and make-up working days
    only in November or December of the year before. A count that runs into a year not
    yet published takes Monday to Friday as working days there; such a deadline is
    ``provisional`` and should be computed again once that year's calendar is out.
    """

    day: date
    provisional: bool


class WorkingDays:
    """China's official working days, from the maintained `chinese_calendar` data.

    A working day is Monday to Friday unless declared a public holiday, plus every
    Saturday or Sunday declared a make-up working day (调休上班). Outside the years the
    library covers, Monday to Friday are taken as working days (see `Deadline`).
    """

    def __init__(self) -> None:
        # The library's own coverage test: the years that have holiday data at all.
        published = chinese_calendar.holidays.keys()
        self._first_year: int = min(published).year
        self._last_year: int = max(published).year
        self._working_by_year: dict[int, frozenset[date]] = {}
        self._added: dict[tuple[date, int], Deadline] = {}

    @property
    def first_year(self) -> int:
        """The first year whose official calendar is known."""
        return self._first_year

    @property
    def last_year(self) -> int:
        """The last year whose official calendar is known (published)."""
        return self._last_year

    def covers(self, day: date) -> bool:
        """Whether the official calendar for `day`'s year is known."""
        return self._first_year <= day.year <= self._last_year

    def is_working_day(self, day: date) -> bool:
        """Whether `day` is a working day; Monday to Friday outside the covered years."""
        day = _as_date(day)
        if not self.covers(day):
            return day.weekday() <= _FRIDAY
        return day in self._working_days_of(day.year)

    def add(self, start: date, days: int) -> Deadline:
        """The date `days` working days after `start`.

        Counting starts on the day after `start`, so `start` itself never counts: one
        working day after a Friday is the next Monday, whatever the Friday was. With
        `days == 0` the result is `start` if it is a working day, else the next working
        day. `provisional` is set when any day examined lies outside the covered years.
        Raises ValueError for a negative `days`.
        """
        if days < 0:
            raise ValueError(f"days must be 0 or more, got {days}; count backwards by hand")
        key = (_as_date(start), days)
        if key not in self._added:  # thousands of commitments share a start day
            self._added[key] = self._add(*key)
        return self._added[key]

    def _add(self, start: date, days: int) -> Deadline:
        day = start
        provisional = False
        if days == 0:
            provisional = not self.covers(day)
            while not self.is_working_day(day):
                day += _ONE_DAY
                provisional = provisional or not self.covers(day)
            return Deadline(day=day, provisional=provisional)
        remaining = days
        while remaining:
            day += _ONE_DAY
            provisional = provisional or not self.covers(day)
            if self.is_working_day(day):
                remaining -= 1
        return Deadline(day=day, provisional=provisional)

    def between(self, start: date, end: date) -> int:
        """The number of working days in (start, end]; 0 when `end` is not after `start`."""
        day, last = _as_date(start), _as_date(end)
        count = 0
        while day < last:
            day += _ONE_DAY
            if self.is_working_day(day):
                count += 1
        return count

    def _working_days_of(self, year: int) -> frozenset[date]:
        # The library rescans its whole table on every call (~20 µs); a year's answers are
        # computed once so a peak of deadlines costs set look-ups, not library calls.
        known = self._working_by_year.get(year)
        if known is None:
            day = date(year, 1, 1)
            known_days: set[date] = set()
            while day.year == year:
                if chinese_calendar.is_workday(day):
                    known_days.add(day)
                day += _ONE_DAY
            known = frozenset(known_days)
            self._working_by_year[year] = known
        return known


def _as_date(day: date) -> date:
    # A datetime is a date too, but mixing the two in comparisons raises TypeError.
    return day.date() if isinstance(day, datetime) else day


@cache
def default_calendar() -> WorkingDays:
    """The shared calendar; each year's working days are worked out once, on first use."""
    return WorkingDays()
