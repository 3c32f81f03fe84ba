"""A department's lifecycle on a day: provisional deadlines counted again, overdue
rectifications made proposed breaches (the applicant notified), proposed breaches whose
defence period ended published, ended publications expired; run daily by the service and by
`commitledger lifecycle run`.

Idempotent and crash-safe as the verification run is: every outcome goes through the outcome
outbox (queued, then sent; whatever an attempt that died left there is sent first and the
chain is asked before anything is queued), the store follows the chain, and each step looks
again at what is still to do. A rerun, or a run after a kill -9 at any point, records nothing
twice.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select

from ledger import exclusions
from verifier.engine.actions import DepartmentActions
from verifier.engine.appeals import flag_overdue_appeals
from verifier.engine.defence import publish_lapsed
from verifier.records import breach_records

# Fault injection for the crash tests: the process kills itself (SIGKILL, as a crash would)
# when it reaches the named stage. Never set outside tests.
CRASH_AT_ENV = "COMMITLEDGER_LIFECYCLE_CRASH_AT"
CRASH_STAGES = ("overdue-sent", "defence-published", "expiry-sent", "expiry-closed")

_ENDED = ("expired", "repaired", "corrected")
PAGE = 1000  # deadlines counted again at once


@dataclass(frozen=True)
class LifecycleSummary:
    """What one department's lifecycle job did on a day."""

    department: str
    on: date
    deadlines_moved: int  # provisional deadlines counted again on the published calendar
    overdue: int  # mismatches past their rectification deadline, decided now
    expiries_sent: int  # Expired outcomes queued and sent on chain now
    expired: tuple[str, ...]  # breach records off the public list now
    readmitted: int  # applicants whose exclusion was lifted by the reconciliation
    objections_overdue: int = 0  # objections past their decision limit, flagged now
    repairs_overdue: int = 0  # repair applications past their decision limit, flagged now
    published: tuple[str, ...] = ()  # proposed breaches published: their defence period ended
    awaiting_officer: int = 0  # period ended with a statement filed: the officer decides

    def to_json_obj(self) -> dict[str, Any]:
        """The summary as plain JSON (the command's --json)."""
        return {
            "department": self.department,
            "on": self.on.isoformat(),
            "deadlines_moved": self.deadlines_moved,
            "overdue": self.overdue,
            "expiries_sent": self.expiries_sent,
            "expired": list(self.expired),
            "readmitted": self.readmitted,
            "objections_overdue": self.objections_overdue,
            "repairs_overdue": self.repairs_overdue,
            "published": list(self.published),
            "awaiting_officer": self.awaiting_officer,
        }


def run_lifecycle(actions: DepartmentActions, on: date) -> LifecycleSummary:
    """The department's lifecycle steps due on `on`, in order; each safe to run again."""
    moved = recompute_deadlines(actions)
    overdue = actions.process_overdue(on)
    _crash_point("overdue-sent")
    defence = publish_lapsed(actions, on)
    _crash_point("defence-published")
    sent = actions.send_expiries(on)
    _crash_point("expiry-sent")
    expired = actions.close_expired(on)
    _crash_point("expiry-closed")
    readmitted = readmit_ended(actions, on)
    objections, repairs = flag_overdue_appeals(actions, on)
    return LifecycleSummary(
        actions.code,
        on,
        moved,
        overdue,
        sent,
        tuple(expired),
        readmitted,
        objections,
        repairs,
        defence.published,
        defence.awaiting_officer,
    )


def recompute_deadlines(actions: DepartmentActions) -> int:
    """Count again, on the official calendar now published, the department's verification
    deadlines that were counted past it (Monday to Friday there); how many moved.

    A deadline is counted as it was scheduled: the matter's window in working days from the
    day the commitment was made. One counted again past the calendar's end is still
    provisional, and its day lies past `through`: the loop ends."""
    calendar = actions.calendar
    through = date(calendar.last_year, 12, 31)
    moved = 0
    while True:
        changed = 0
        page = actions.records.provisional_deadlines(actions.code, through, PAGE)
        for verification in page:
            stored = actions.store.get(verification.commitment_hash)
            if stored is None:
                continue
            window = actions.catalog.matter(verification.matter_code).verification_window_days
            made_on = datetime.fromtimestamp(stored.received_at, UTC).date()
            due = calendar.add(made_on, window)
            if due.provisional and due.day == verification.due_on:
                continue
            if actions.records.move_deadline(verification.commitment_hash, due):
                changed += 1
        moved += changed
        if len(page) < PAGE or not changed:
            return moved


def readmit_ended(actions: DepartmentActions, on: date) -> int:
    """Lift the exclusion of every applicant of this department whose breaches all ended
    (expired, repaired, corrected) and who has none listed on `on`: what a step that died
    between a breach's end and its applicant's readmission left behind."""
    query = (
        select(exclusions.c.applicant_fingerprint)
        .join(
            breach_records,
            breach_records.c.applicant_fingerprint == exclusions.c.applicant_fingerprint,
        )
        .where(breach_records.c.department == actions.code, breach_records.c.status.in_(_ENDED))
        .distinct()
    )
    with actions.store.engine.connect() as connection:
        fingerprints = [bytes(f) for f in connection.execute(query).scalars()]
    lifted = 0
    for fingerprint in fingerprints:
        if not actions.records.unrepaired_breach_for(fingerprint, on):
            actions.store.lift_exclusion(fingerprint)
            lifted += 1
    return lifted


def _crash_point(stage: str) -> None:
    if os.environ.get(CRASH_AT_ENV) == stage:
        os.kill(os.getpid(), signal.SIGKILL)
