"""Verifications: each commitment scheduled for its deadline, then its outcome and state, as a
part of `verifier.records.facade.VerifierRecords`.

Over 400 lines: one table's life (scheduled, decided, rectifying, recorded, refused)
and the department's queries over it; its transitions must be read together.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, Protocol

from sqlalchemy import ColumnElement, Engine, Select, exists, func, select, update
from sqlalchemy.exc import IntegrityError

from ledger import (
    Hash32,
    Status,
    commitments,
    insert_rows,
    outcome_outbox,
    rows_among,
    stored_among,
    update_rows,
)
from verifier.errors import RecordsError, UnknownRecordError
from verifier.records.stats import STATUS_OF_STATE, count_moves
from verifier.records.tables import verifications

VerificationState = Literal[
    "due",
    "kept",
    "mismatch",
    "manual",
    "proposed",
    "breached",
    "corrected",
    "withdrawn",
    "integrity_failure",
]

# The contract's transitionAllowed, with "due" for Anchored. integrity_failure is ours
# (the document or its proof did not check), so it may go back to due once repaired.
# A breach is proposed (the applicant notified) before it is published: "breached" only
# from "proposed"; a defence that succeeds ends it kept, manual or corrected.
# Breached is final here: the breach record carries the rest of the story.
_NEXT: dict[str, frozenset[str]] = {
    "due": frozenset({"kept", "mismatch", "manual", "proposed", "withdrawn", "integrity_failure"}),
    "mismatch": frozenset({"kept", "manual", "proposed"}),
    "manual": frozenset({"kept", "mismatch", "proposed"}),
    "proposed": frozenset({"breached", "kept", "manual", "corrected"}),
    "integrity_failure": frozenset({"due", "manual"}),
    "kept": frozenset(),
    "breached": frozenset(),
    "corrected": frozenset(),
    "withdrawn": frozenset(),
}


class DueDate(Protocol):
    """A verification deadline: the day, and whether the calendar for it is provisional."""

    @property
    def day(self) -> date: ...
    @property
    def provisional(self) -> bool: ...


@dataclass(frozen=True)
class Verification:
    """Where one commitment's verification stands."""

    commitment_hash: Hash32
    matter_code: str
    department: str
    due_on: date
    deadline_provisional: bool
    state: VerificationState
    rectify_by: date | None
    outcome_status: int | None
    report: dict[str, Any] | None
    evidence: Hash32 | None
    tx_hash: bytes | None
    block_number: int | None
    recorded_at: float | None
    overdue_flagged: bool
    updated_at: float


@dataclass(frozen=True)
class RecordedOutcome:
    """One outcome recorded on chain, for `record_outcomes`."""

    commitment_hash: Hash32
    state: VerificationState
    outcome_status: int
    evidence: Hash32
    report: Mapping[str, Any] | None  # None: the outcome outbox's row of this evidence has it
    tx_hash: bytes
    block_number: int
    rectify_by: date | None = None


# A verification's report is stored once, in the outcome outbox row that recorded it (same
# commitment, same evidence); stores written before that kept a copy here, read first.
_OUTBOX_REPORT = (
    select(outcome_outbox.c.report)
    .where(
        outcome_outbox.c.commitment_hash == verifications.c.commitment_hash,
        outcome_outbox.c.evidence == verifications.c.evidence,
    )
    .order_by(outcome_outbox.c.id.desc())
    .limit(1)
    .scalar_subquery()
)
# The columns schedule_many writes.
_SCHEDULED = (
    "commitment_hash",
    "matter_code",
    "department",
    "due_on",
    "deadline_provisional",
    "state",
    "overdue_flagged",
    "updated_at",
)
# What record_outcomes reads of each row, and the columns it writes (then the key).
_FOUND = ("commitment_hash", "state", "department", "matter_code")
_RECORDED = (
    "state",
    "rectify_by",
    "outcome_status",
    "evidence",
    "report",
    "tx_hash",
    "block_number",
    "recorded_at",
    "updated_at",
)
# A row is read by position (a run reads every due one; Row's attribute lookups were most of
# the cost): the table's own column order, which the report takes in place.
_COLUMN_ORDER = (
    "commitment_hash",
    "matter_code",
    "department",
    "due_on",
    "deadline_provisional",
    "state",
    "rectify_by",
    "outcome_status",
    "report",
    "evidence",
    "tx_hash",
    "block_number",
    "recorded_at",
    "overdue_flagged",
    "updated_at",
)
if tuple(verifications.c.keys()) != _COLUMN_ORDER:
    raise RecordsError("verifications: its columns are read by position; update _COLUMN_ORDER")
_WITH_REPORT: Select[Any] = select(
    *(
        func.coalesce(verifications.c.report, _OUTBOX_REPORT).label("report")
        if c.name == "report"
        else c
        for c in verifications.c
    )
)


def _statuses(
    department: str, matter_code: str, before: str, after: str
) -> tuple[str, str, Status, Status]:
    return department, matter_code, STATUS_OF_STATE[before], STATUS_OF_STATE[after]


def _moves(
    found: Mapping[bytes, tuple[str, str, str]], entries: Sequence[RecordedOutcome]
) -> list[tuple[str, str, Status, Status]]:
    """The moves of state `entries` make, for the statistics (a state kept moves nothing);
    `found`: each commitment's (state, department, matter code) before them."""
    moves = []
    state = {digest: row[0] for digest, row in found.items()}
    for entry in entries:
        digest = bytes(entry.commitment_hash)
        _, department, matter_code = found[digest]
        moves.append(_statuses(department, matter_code, state[digest], entry.state))
        state[digest] = entry.state
    return moves


def _verification(row: Any) -> Verification:
    """A verification from a row of the table's columns in their order (see _COLUMN_ORDER)."""
    (
        commitment_hash,
        matter_code,
        department,
        due_on,
        deadline_provisional,
        state,
        rectify_by,
        outcome_status,
        report,
        evidence,
        tx_hash,
        block_number,
        recorded_at,
        overdue_flagged,
        updated_at,
    ) = row
    return Verification(
        commitment_hash=Hash32(bytes(commitment_hash)),
        matter_code=matter_code,
        department=department,
        due_on=date.fromisoformat(due_on),
        deadline_provisional=bool(deadline_provisional),
        state=state,
        rectify_by=None if rectify_by is None else date.fromisoformat(rectify_by),
        outcome_status=outcome_status,
        report=None if report is None else json.loads(report),
        evidence=None if evidence is None else Hash32(bytes(evidence)),
        tx_hash=None if tx_hash is None else bytes(tx_hash),
        block_number=block_number,
        recorded_at=recorded_at,
        overdue_flagged=bool(overdue_flagged),
        updated_at=updated_at,
    )


class VerificationRecords:
    """The verifications table's reads and writes."""

    _engine: Engine
    _writer: Engine

    def schedule_many(
        self,
        items: Sequence[tuple[Hash32, str, DueDate]],
        department: str,
        now: float | None = None,
    ) -> int:
        """Schedule commitments not yet scheduled (hash, matter, deadline), in one insert."""
        if not items:
            return 0
        known = self.scheduled_among([h for h, _, _ in items])
        stamp = time.time() if now is None else now
        rows = [
            (
                bytes(commitment),
                matter_code,
                department,
                due.day.isoformat(),
                bool(due.provisional),
                "due",
                False,
                stamp,
            )
            for commitment, matter_code, due in items
            if commitment not in known
        ]
        if rows:
            with self._writer.begin() as connection:
                insert_rows(connection, verifications, _SCHEDULED, rows)
        return len(rows)

    def schedule(
        self,
        commitment_hash: Hash32,
        matter_code: str,
        department: str,
        due: DueDate,
        now: float | None = None,
    ) -> bool:
        """Await verification of a commitment by `due`; True if new, False if known.

        Scheduling again changes nothing, except that a provisional deadline still
        awaiting verification takes the new one (the official calendar came out).
        """
        stamp = time.time() if now is None else now
        key = verifications.c.commitment_hash == commitment_hash
        try:
            with self._writer.begin() as connection:
                row = connection.execute(select(verifications).where(key)).first()
                if row is None:
                    connection.execute(
                        verifications.insert().values(
                            commitment_hash=commitment_hash,
                            matter_code=matter_code,
                            department=department,
                            due_on=due.day.isoformat(),
                            deadline_provisional=due.provisional,
                            state="due",
                            overdue_flagged=False,
                            updated_at=stamp,
                        )
                    )
                    return True
                if (row.matter_code, row.department) != (matter_code, department):
                    raise RecordsError(
                        f"commitment 0x{commitment_hash.hex()} is scheduled for matter "
                        f"{row.matter_code} of {row.department}, not {matter_code} of {department}"
                    )
                if row.state == "due" and row.deadline_provisional:
                    connection.execute(
                        update(verifications)
                        .where(key)
                        .values(
                            due_on=due.day.isoformat(),
                            deadline_provisional=due.provisional,
                            updated_at=stamp,
                        )
                    )
                return False
        except IntegrityError:
            return False  # another process scheduled it first

    def provisional_deadlines(
        self, department: str, through: date, limit: int = 1000
    ) -> list[Verification]:
        """The department's verifications still due on a deadline counted past the published
        official calendar (Monday to Friday there), up to `through` (the calendar's last
        known day: a later one is still provisional whatever the count)."""
        provisional = verifications.c.deadline_provisional.is_(True) & (
            verifications.c.due_on <= through.isoformat()
        )
        return self._select(provisional, department, limit)

    def move_deadline(
        self, commitment_hash: Hash32, due: DueDate, now: float | None = None
    ) -> bool:
        """Give a provisional deadline still awaiting verification the one counted again;
        False when it is no longer provisional or no longer due (a run decided it meanwhile)."""
        with self._writer.begin() as connection:
            moved = connection.execute(
                update(verifications)
                .where(
                    verifications.c.commitment_hash == commitment_hash,
                    verifications.c.state == "due",
                    verifications.c.deadline_provisional.is_(True),
                )
                .values(
                    due_on=due.day.isoformat(),
                    deadline_provisional=due.provisional,
                    updated_at=time.time() if now is None else now,
                )
            )
        return moved.rowcount == 1

    def verification(self, commitment_hash: Hash32) -> Verification | None:
        """One commitment's verification, or None if it was never scheduled."""
        with self._engine.connect() as connection:
            row = connection.execute(
                _WITH_REPORT.where(verifications.c.commitment_hash == commitment_hash)
            ).first()
        return None if row is None else _verification(row)

    def due(self, on: date, department: str | None = None, limit: int = 100) -> list[Verification]:
        """Commitments awaiting verification whose deadline is `on` or earlier, earliest first.

        To start early, pass a later day: verification may happen any time before the deadline.
        """
        return self._select(verifications.c.due_on <= on.isoformat(), department, limit)

    def overdue_unverified(self, on: date, department: str | None = None) -> list[Verification]:
        """Commitments whose verification deadline passed before `on` with nothing recorded."""
        return self._select(verifications.c.due_on < on.isoformat(), department, None)

    def flag_overdue(
        self, on: date, department: str | None = None, now: float | None = None
    ) -> list[Hash32]:
        """Flag overdue commitments for their department; return those flagged just now."""
        conditions = [
            verifications.c.state == "due",
            verifications.c.due_on < on.isoformat(),
            verifications.c.overdue_flagged.is_(False),
        ]
        if department is not None:
            conditions.append(verifications.c.department == department)
        with self._writer.begin() as connection:
            hashes = [
                Hash32(bytes(h))
                for h in connection.execute(
                    select(verifications.c.commitment_hash).where(*conditions)
                ).scalars()
            ]
            if hashes:
                connection.execute(
                    update(verifications)
                    .where(verifications.c.commitment_hash.in_(hashes))
                    .values(overdue_flagged=True, updated_at=time.time() if now is None else now)
                )
        return hashes

    def open_mismatches_past(self, on: date, department: str | None = None) -> list[Verification]:
        """Mismatches whose rectification deadline passed before `on`: candidates for breach."""
        query = _WITH_REPORT.where(
            verifications.c.state == "mismatch", verifications.c.rectify_by < on.isoformat()
        )
        if department is not None:
            query = query.where(verifications.c.department == department)
        with self._engine.connect() as connection:
            rows = connection.execute(query.order_by(verifications.c.rectify_by)).all()
        return [_verification(row) for row in rows]

    def set_state(
        self,
        commitment_hash: Hash32,
        state: VerificationState,
        *,
        rectify_by: date | None = None,
        now: float | None = None,
    ) -> Verification:
        """Move a verification to `state` (no chain transaction yet, e.g. integrity_failure)."""
        return self._move(commitment_hash, state, rectify_by, {}, now)

    def record_outcome(
        self,
        commitment_hash: Hash32,
        state: VerificationState,
        *,
        outcome_status: int,
        evidence: Hash32,
        report: Mapping[str, Any] | None,
        tx_hash: bytes,
        block_number: int,
        rectify_by: date | None = None,
        now: float | None = None,
    ) -> Verification:
        """Move a verification to `state` with the outcome recorded on chain."""
        self.record_outcomes(
            [
                RecordedOutcome(
                    commitment_hash,
                    state,
                    outcome_status,
                    evidence,
                    report,
                    tx_hash,
                    block_number,
                    rectify_by,
                )
            ],
            now,
        )
        stored = self.verification(commitment_hash)
        assert stored is not None
        return stored

    def record_outcomes(self, entries: Sequence[RecordedOutcome], now: float | None = None) -> None:
        """`record_outcome` for many at once: one transaction, one read, one batched write."""
        if not entries:
            return
        stamp = time.time() if now is None else now
        for entry in entries:
            if entry.state == "mismatch" and entry.rectify_by is None:
                raise RecordsError("a mismatch needs rectify_by, the day rectification is due")
        # Straight to the driver (plain tuples, no per-row preparing): the main process
        # records every outcome of a run here.
        with self._writer.begin() as connection:
            found = {
                bytes(digest): (state, department, matter_code)
                for digest, state, department, matter_code in rows_among(
                    connection,
                    verifications,
                    "commitment_hash",
                    _FOUND,
                    [bytes(entry.commitment_hash) for entry in entries],
                )
            }
            for entry in entries:
                row = found.get(entry.commitment_hash)
                if row is None:
                    raise UnknownRecordError(
                        f"commitment 0x{entry.commitment_hash.hex()} is not scheduled"
                    )
                state = row[0]
                if entry.state != state and entry.state not in _NEXT[state]:
                    raise RecordsError(
                        f"commitment 0x{entry.commitment_hash.hex()} is {state}: it cannot "
                        f"become {entry.state}"
                    )
            update_rows(
                connection,
                verifications,
                "commitment_hash",
                _RECORDED,
                [
                    (
                        e.state,
                        None if e.rectify_by is None else e.rectify_by.isoformat(),
                        int(e.outcome_status),
                        bytes(e.evidence),
                        None
                        if e.report is None
                        else json.dumps(dict(e.report), sort_keys=True, ensure_ascii=False),
                        bytes(e.tx_hash),
                        e.block_number,
                        stamp,
                        stamp,
                        bytes(e.commitment_hash),
                    )
                    for e in entries
                ],
            )
            count_moves(connection, _moves(found, entries), stamp)

    def _move(
        self,
        commitment_hash: Hash32,
        state: str,
        rectify_by: date | None,
        values: dict[str, Any],
        now: float | None,
    ) -> Verification:
        if state not in _NEXT:
            raise RecordsError(f"unknown verification state {state!r}; known: {sorted(_NEXT)}")
        if state == "mismatch" and rectify_by is None:
            raise RecordsError("a mismatch needs rectify_by, the day rectification is due")
        key = verifications.c.commitment_hash == commitment_hash
        with self._writer.begin() as connection:
            row = connection.execute(
                select(
                    verifications.c.state, verifications.c.department, verifications.c.matter_code
                )
                .where(key)
                .with_for_update()
            ).first()
            if row is None:
                raise UnknownRecordError(f"commitment 0x{commitment_hash.hex()} is not scheduled")
            # Staying in a state is allowed: a retried write, or a rectification extended.
            if state != row.state and state not in _NEXT[row.state]:
                allowed = ", ".join(sorted(_NEXT[row.state])) or "nothing (final)"
                raise RecordsError(
                    f"commitment 0x{commitment_hash.hex()} is {row.state}: it cannot become "
                    f"{state}; allowed: {allowed}"
                )
            connection.execute(
                update(verifications)
                .where(key)
                .values(
                    state=state,
                    rectify_by=None if rectify_by is None else rectify_by.isoformat(),
                    updated_at=time.time() if now is None else now,
                    **values,
                )
            )
            moved = (row.department, row.matter_code, row.state, state)
            count_moves(connection, [_statuses(*moved)], now)
            stored = connection.execute(_WITH_REPORT.where(key)).one()
        return _verification(stored)

    def _select(
        self, deadline: ColumnElement[bool], department: str | None, limit: int | None
    ) -> list[Verification]:
        query = select(verifications).where(verifications.c.state == "due", deadline)
        if department is not None:
            query = query.where(verifications.c.department == department)
        query = query.order_by(verifications.c.due_on, verifications.c.commitment_hash)
        with self._engine.connect() as connection:
            rows = connection.execute(query if limit is None else query.limit(limit)).all()
        return [_verification(row) for row in rows]

    def states_of(self, hashes: Sequence[Hash32]) -> dict[bytes, str]:
        """The verification state of each of these commitments that is scheduled."""
        wanted = [bytes(h) for h in hashes]
        with self._engine.connect() as connection:
            rows = rows_among(
                connection, verifications, "commitment_hash", ("commitment_hash", "state"), wanted
            )
        return {bytes(digest): state for digest, state in rows}

    def unscheduled_anchored(self, department: str) -> list[tuple[Hash32, str, float]]:
        """(hash, matter code, received_at) of the department's anchored commitments not yet
        scheduled, in the order they were stored: what a run has to schedule.

        One anti-join in the database (the commitments' state, department, id index, then the
        verifications' key): the rows already scheduled never reach Python, so a run's cost no
        longer grows with every commitment the department ever anchored.
        """
        scheduled = exists().where(verifications.c.commitment_hash == commitments.c.hash)
        query = (
            select(commitments.c.hash, commitments.c.matter_code, commitments.c.received_at)
            .where(
                commitments.c.state == "anchored",
                commitments.c.department == department,
                ~scheduled,
            )
            .order_by(commitments.c.id)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return [(Hash32(bytes(r.hash)), r.matter_code, float(r.received_at)) for r in rows]

    def scheduled_among(self, hashes: Sequence[Hash32]) -> set[bytes]:
        """Which of these commitments are already scheduled."""
        with self._engine.connect() as connection:
            return stored_among(
                connection, verifications, "commitment_hash", [bytes(h) for h in hashes]
            )
