"""Working time: office hours in Beijing time on the official calendar's working days.

"Half a working day" (半个工作日) is half of one working day's office time, counted only
inside the office periods of working days (make-up working days included, public holidays
and ordinary weekends not): with periods 09:00-12:00 and 13:00-17:00 a working day is 7 hours
and half a day 3.5 hours, so an application received online on Friday at 16:00 is due on
Monday at 11:30 (1 hour on Friday, 2.5 hours on Monday).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from itertools import pairwise
from typing import Literal

from verifier.calendar import WorkingDays, default_calendar

__all__ = [
    "BEIJING",
    "DEFAULT_OFFICE_HOURS",
    "OFFICE_HOURS_MAX_CHARS",
    "OfficeHours",
    "OfficePeriod",
    "parse_periods",
]

# China keeps one time zone and no daylight saving time: a fixed offset is exact.
BEIJING = timezone(timedelta(hours=8), "CST")
DEFAULT_OFFICE_HOURS = "09:00-12:00,13:00-17:00"
OFFICE_HOURS_MAX_CHARS = 200  # the setting's text; at most a handful of periods fit
MAX_PERIODS = 8
MAX_WORKING_DAYS = 366.0  # the most `add` counts (the catalog's limits stay under 60)
# A bound on the days walked: far more than MAX_WORKING_DAYS working days ever take.
_MAX_DAYS_WALKED = 3 * 366 + 31
_PERIOD = re.compile(r"([0-2][0-9]):([0-5][0-9])-([0-2][0-9]):([0-5][0-9])")
_DAY_MINUTES = 24 * 60

Channel = Literal["counter", "online"]


@dataclass(frozen=True, order=True)
class OfficePeriod:
    """One period of office time in a day, Beijing time, in minutes from midnight:
    [start, end), `end` at most 24:00."""

    start: int
    end: int

    @property
    def length(self) -> timedelta:
        """How long the period lasts."""
        return timedelta(minutes=self.end - self.start)

    def on(self, day: date) -> tuple[datetime, datetime]:
        """The period's start and end on `day`, Beijing time."""
        midnight = datetime.combine(day, time(0), tzinfo=BEIJING)
        return midnight + timedelta(minutes=self.start), midnight + timedelta(minutes=self.end)

    def __str__(self) -> str:
        return f"{_clock(self.start)}-{_clock(self.end)}"


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_periods(text: str) -> tuple[OfficePeriod, ...]:
    """The periods of a setting like "09:00-12:00,13:00-17:00"; ValueError saying what is
    wrong when the text is too long, a period malformed, empty or out of order, or two
    periods overlap."""
    if len(text) > OFFICE_HOURS_MAX_CHARS:
        raise ValueError(f"office hours: at most {OFFICE_HOURS_MAX_CHARS} characters")
    entries = [entry.strip() for entry in text.split(",")]
    if not any(entries):
        raise ValueError("office hours: give at least one period, like 09:00-12:00")
    if len(entries) > MAX_PERIODS:
        raise ValueError(f"office hours: at most {MAX_PERIODS} periods")
    periods: list[OfficePeriod] = []
    for entry in entries:
        match = _PERIOD.fullmatch(entry)
        if match is None:
            raise ValueError(f"office hours: {entry[:20]!r} is not a period like 09:00-12:00")
        sh, sm, eh, em = (int(group) for group in match.groups())
        start, end = sh * 60 + sm, eh * 60 + em
        if sh > 23 or end > _DAY_MINUTES:
            raise ValueError(f"office hours: {entry} is not within one day (00:00-24:00)")
        if end <= start:
            raise ValueError(f"office hours: {entry} ends before it starts")
        if periods and start < periods[-1].end:
            raise ValueError(
                f"office hours: {entry} starts before {periods[-1]} ends (periods go in "
                "order, without overlapping)"
            )
        periods.append(OfficePeriod(start, end))
    return tuple(periods)


class OfficeHours:
    """Office periods on the working days of the official calendar, in Beijing time.

    One working day is the sum of the periods. Every datetime given must carry its time
    zone; every datetime returned is in UTC.
    """

    def __init__(self, periods: tuple[OfficePeriod, ...], calendar: WorkingDays) -> None:
        if not periods:
            raise ValueError("office hours: give at least one period")
        if any(b.start < a.end for a, b in pairwise(periods)):
            raise ValueError("office hours: periods go in order, without overlapping")
        self.periods = periods
        self.calendar = calendar
        self.day_length = sum((p.length for p in periods), timedelta())

    @classmethod
    def parse(cls, text: str, calendar: WorkingDays | None = None) -> OfficeHours:
        """Office hours from a setting like "09:00-12:00,13:00-17:00" (see `parse_periods`)
        on `calendar` (default: the shared official calendar)."""
        return cls(parse_periods(text), calendar or default_calendar())

    def __str__(self) -> str:
        return ",".join(str(period) for period in self.periods)

    def __repr__(self) -> str:
        return f"OfficeHours({str(self)!r})"

    # --- counting ---------------------------------------------------------------------------

    def add(self, start: datetime, working_days: float) -> datetime:
        """The moment `working_days` of office time after `start` (UTC).

        Only time inside the periods of working days counts. A count that ends exactly
        where a period ends is due then (Friday 16:00 plus one hour is Friday 17:00); a
        count from outside office time starts at the next period (0 working days from
        Saturday is Monday's opening). ValueError for a negative, non-finite or larger
        than MAX_WORKING_DAYS count, or a naive `start`.
        """
        if not (math.isfinite(working_days) and 0 <= working_days <= MAX_WORKING_DAYS):
            raise ValueError(
                f"working_days must be from 0 to {MAX_WORKING_DAYS:g}, got {working_days!r}"
            )
        remaining = self.day_length * working_days
        for opens, closes in self._open_from(start):
            available = closes - opens
            if remaining <= available:
                return (opens + remaining).astimezone(UTC)
            remaining -= available
        raise AssertionError("unreachable: _open_from raises before it runs out")

    def decision_due(
        self, received_at: datetime, channel: Channel, online_limit_working_days: float
    ) -> datetime:
        """When a decision on a commitment received at `received_at` is due (UTC).

        Online: `online_limit_working_days` of office time after receipt (`add`). At the
        counter the decision is made on the spot: by the end of the office period in which
        it was received, or of the next period when it was received outside office time.
        """
        if channel == "online":
            return self.add(received_at, online_limit_working_days)
        if channel != "counter":
            raise ValueError(f"channel is counter or online, not {channel!r}")
        for _opens, closes in self._open_from(received_at):
            return closes.astimezone(UTC)
        raise AssertionError("unreachable: _open_from raises before it runs out")

    def between(self, start: datetime, end: datetime) -> float:
        """The working days of office time from `start` to `end`; negative when `end` is
        earlier (a due time `between(due, now)` working days ago)."""
        if end < start:
            return -self.between(end, start)
        counted = timedelta()
        for opens, closes in self._open_from(start):
            if opens >= end:
                break
            counted += min(closes, end) - opens
        return counted / self.day_length

    def provisional(self, start: datetime, end: datetime) -> bool:
        """Whether a count from `start` to `end` runs into a year whose official calendar
        is not yet published (Monday to Friday taken as working days there): such a due
        time may move once the year's holidays are out (see `verifier.calendar.Deadline`)."""
        first, last = sorted((_local(start).date(), _local(end).date()))
        return not (self.calendar.covers(first) and self.calendar.covers(last))

    def _open_from(self, moment: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Each stretch of office time from `moment` on, in Beijing time: the rest of the
        period holding `moment`, then every later period of every working day."""
        local = _local(moment)
        day = local.date()
        for _ in range(_MAX_DAYS_WALKED):
            if self.calendar.is_working_day(day):
                for period in self.periods:
                    opens, closes = period.on(day)
                    if closes > local:
                        yield max(opens, local), closes
            day += timedelta(days=1)
        raise ValueError(f"no office time within {_MAX_DAYS_WALKED} days of {local.date()}")


def _local(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            "give a datetime with its time zone (UTC or Beijing time), not a naive one"
        )
    return moment.astimezone(BEIJING)
