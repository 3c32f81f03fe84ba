"""Decision due times, late cutoffs and working days left, by office hours, for the work
lists: cached, because the same rows come back page after page, and one cutoff serves every
request of one second."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any, Protocol

_BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
_DAY = timedelta(days=1)
_EPOCH = date(2020, 1, 1)  # counting working days from here (late by years is still late)


class WorkingCalendar(Protocol):
    """The official calendar's working days (`verifier.calendar.WorkingDays`)."""

    def is_working_day(self, day: date) -> bool: ...


class DecisionHours(Protocol):
    """Working time as `verifier.working_time.OfficeHours` counts it (what the lists use)."""

    @property
    def calendar(self) -> WorkingCalendar: ...

    def decision_due(
        self, received_at: datetime, channel: Any, online_limit_working_days: float
    ) -> datetime: ...

    def between(self, start: datetime, end: datetime) -> float: ...


def _day_start(day: date) -> datetime:
    """The first moment of a Beijing day."""
    return datetime.combine(day, time(0), _BEIJING)


_CACHED = 100_000  # due times kept (a row's due never changes); then the cache starts again


class DecisionClock:
    """Decision due times, late cutoffs and working days left by `hours`, cached: the same
    rows come back page after page, and a cutoff holds for every request of one second."""

    def __init__(self, hours: DecisionHours) -> None:
        self.hours = hours
        self._due: dict[tuple[float, str, float], datetime] = {}
        self._cutoffs: dict[tuple[str, float, float], float] = {}
        self._rest_of_day: dict[datetime, float] = {}
        self._today_so_far: tuple[datetime | None, float] = (None, 0.0)
        self._counted = [0]  # working days before _EPOCH + i days, for each i
        self._counting = threading.Lock()  # request threads extend it one at a time

    def due(self, received_at: float, channel: str, days: float) -> datetime:
        """When the decision on a commitment received at `received_at` is due."""
        key = (received_at, channel, days)
        found = self._due.get(key)
        if found is None:
            if len(self._due) >= _CACHED:
                self._due.clear()
            received = datetime.fromtimestamp(received_at, UTC)
            found = self._due[key] = self.hours.decision_due(received, channel, days)
        return found

    def cutoff(self, channel: str, days: float, now: datetime) -> float:
        """The receipt time before which a commitment of `channel` and limit `days` is late
        at `now` (see `_latest_late`)."""
        key = (channel, days, now.timestamp())
        found = self._cutoffs.get(key)
        if found is None:
            if len(self._cutoffs) >= 1024:
                self._cutoffs.clear()
            hours = self.hours
            found = _latest_late(lambda at: hours.decision_due(at, channel, days), now)
            self._cutoffs[key] = found
        return found

    def left(self, due: datetime, now: datetime) -> float:
        """Working days from `now` to `due`; negative: how many late. A long way late is
        counted as the rest of the due day, whole working days, and today so far."""
        if due >= now:
            return self.hours.between(now, due)
        due_day, today = due.astimezone(_BEIJING).date(), now.astimezone(_BEIJING).date()
        if (today - due_day).days <= 1:
            return -self.hours.between(due, now)
        head = self._rest_of_day.get(due)
        if head is None:  # a row's due never changes: its day's rest is counted once
            if len(self._rest_of_day) >= _CACHED:
                self._rest_of_day.clear()
            head = self._rest_of_day[due] = self.hours.between(due, _day_start(due_day + _DAY))
        since, tail = self._today_so_far
        if since != now:  # the same for every row of a page, and every page of a second
            tail = self.hours.between(_day_start(today), now)
            self._today_so_far = (now, tail)
        whole = self._working_before(today) - self._working_before(due_day + _DAY)
        return -(head + whole + tail)

    def _working_before(self, day: date) -> int:
        """Working days from _EPOCH to the day before `day` (a running count, kept)."""
        index = max(0, (day - _EPOCH).days)
        if index < len(self._counted):
            return self._counted[index]
        with self._counting:
            while len(self._counted) <= index:
                passed = _EPOCH + _DAY * (len(self._counted) - 1)
                working = self.hours.calendar.is_working_day(passed)
                self._counted.append(self._counted[-1] + working)
            return self._counted[index]


def _latest_late(due_of: Callable[[datetime], datetime], now: datetime) -> float:
    """The latest receipt time (Unix seconds) found late at `now`: received at or before it,
    a commitment is already late. Due is monotone in receipt, so a bisection finds the
    boundary to within a microsecond (a few dozen due computations, whatever the table's
    size; the boundary itself, due exactly now, is not late)."""
    low, high = now.timestamp() - 400 * 86_400.0, now.timestamp()
    if due_of(datetime.fromtimestamp(low, UTC)) >= now:
        return low - 1.0  # nothing received in the last 400 days is late: older rows are
    while high - low > 1e-6:
        middle = (low + high) / 2
        if due_of(datetime.fromtimestamp(middle, UTC)) < now:
            low = middle
        else:
            high = middle
    return low  # late itself: received at it or before is late
