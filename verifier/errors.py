"""Every error the verifier raises on purpose, each under ledger's ``LedgerError`` root."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from datetime import date
from typing import Literal

from ledger import LedgerError

__all__ = [
    "BreachError",
    "BreachStateError",
    "CursorError",
    "CursorProblem",
    "FeedError",
    "RecordsError",
    "RepairTooEarlyError",
    "SourceError",
    "SourceGarbage",
    "SourceUnavailable",
    "UnknownRecordError",
    "UnknownSourceError",
    "VerificationError",
]


# --------------------------------------------------------------------------- the engine


class VerificationError(LedgerError, ValueError):
    """An action the engine refuses: wrong state, wrong department, too early."""


# --------------------------------------------------------------------------- the records


class RecordsError(LedgerError, ValueError):
    """A verifier record is unknown, or a change to it is not allowed."""


class UnknownRecordError(RecordsError, LookupError):
    """No verification or breach record has this key."""


# --------------------------------------------------------------------------- data sources


class SourceError(LedgerError):
    """A data source could not answer; ``source`` names it. Messages never name the subject."""

    def __init__(self, source: str, detail: str) -> None:
        self.source = source
        super().__init__(f"data source {source!r}: {detail}")


class SourceUnavailable(SourceError, ConnectionError):  # noqa: N818 - the agreed name
    """The source did not answer: timeout, connection error, 5xx after retries, refused token."""


class SourceGarbage(SourceError, ValueError):  # noqa: N818 - the agreed name
    """The source answered with something malformed: not JSON, wrong shape, a broken file."""


class UnknownSourceError(SourceError, LookupError):
    """No source of that name is configured."""

    def __init__(self, source: str, known: Iterable[str]) -> None:
        known = sorted(known)
        close = difflib.get_close_matches(source, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        super().__init__(source, f"not configured; known: {', '.join(known) or 'none'}{hint}")


# --------------------------------------------------------------------------- breach records


class BreachError(LedgerError, ValueError):
    """A breach record cannot be built or cannot make the transition asked of it."""


class BreachStateError(BreachError):
    """The record's status does not allow this transition (e.g. repairing an expired one)."""


class RepairTooEarlyError(BreachError):
    """The minimum publication period has not passed; ``earliest`` is the first day it has."""

    def __init__(
        self, record_id: str, severity: str, months: int, earliest: date, on: date
    ) -> None:
        self.record_id = record_id
        self.earliest = earliest
        self.on = on
        super().__init__(
            f"breach {record_id} ({severity}) must stay published for {months} months: "
            f"it can be repaired from {earliest.isoformat()}, not on {on.isoformat()}"
        )


# --------------------------------------------------------------------------- the credit feed


class FeedError(LedgerError, ValueError):
    """A feed record is malformed, unsigned or signed by the wrong key."""


CursorProblem = Literal["malformed", "forged", "foreign"]


class CursorError(LedgerError, ValueError):
    """A cursor this feed did not issue: `problem` says how it is wrong."""

    def __init__(self, problem: CursorProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem
