"""Objections and repair applications decided: filing (by the applicant or an officer for
them), the department's decision with its reasons, and the lifecycle's flag of those past
their decision limit.

An upheld objection is `DepartmentActions.annul` (Corrected on chain, off the list, the
applicant readmitted); a granted repair is `DepartmentActions.repair` (Repaired on chain, off
the list, the exclusion lifted). The chain and the list move first, the appeal's decision is
written last: a decision that died half-way is taken again and finds the action done.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Literal

from verifier.breaches import BreachRecord, earliest_repair, publication_period, publicly_listed
from verifier.calendar import WorkingDays, default_calendar
from verifier.engine.actions import DepartmentActions
from verifier.errors import RepairTooEarlyError, UnknownRecordError, VerificationError
from verifier.records import (
    Appeal,
    AppealKind,
    AppealRecords,
    FiledBy,
    VerifierRecords,
    bounded_evidence,
    bounded_text,
)

# Working days the department has to decide, counted from the day of filing (defaults of the
# service's settings objection_decision_days and repair_decision_days).
OBJECTION_DECISION_DAYS = 15
REPAIR_DECISION_DAYS = 10

ObjectionOutcome = Literal["upheld", "rejected"]
RepairOutcome = Literal["granted", "refused"]


def _listed_record(records: VerifierRecords, record_id: str, on: date, what: str) -> BreachRecord:
    record = records.breach(record_id)
    if record is None:
        raise UnknownRecordError(f"no breach record {record_id}")
    if not publicly_listed(record, on):
        raise VerificationError(
            f"breach {record_id} is not published on {on.isoformat()} (status {record.status}): "
            f"only a published record can be the subject of {what}"
        )
    return record


def _acting_department(record: BreachRecord, department: str | None) -> None:
    if department is not None and department != record.department:
        raise VerificationError(f"breach {record.id} is {record.department}'s, not {department}'s")


def file_objection(
    appeals: AppealRecords,
    records: VerifierRecords,
    record_id: str,
    *,
    by: FiledBy,
    reason: str,
    evidence: Sequence[str] = (),
    on: date,
    department: str | None = None,
    decision_days: int = OBJECTION_DECISION_DAYS,
    calendar: WorkingDays | None = None,
) -> Appeal:
    """Put a published record under objection (异议处理中) until the department decides,
    within `decision_days` working days. `department`: the officer's, when one files
    (refused for another department's record). Nothing is stored when refused."""
    text = bounded_text("objection's reason", reason)
    items = bounded_evidence(evidence)
    record = _listed_record(records, record_id, on, "an objection")
    _acting_department(record, department)
    decide_by = (calendar or default_calendar()).add(on, decision_days).day
    return appeals.add("objection", record.id, record.department, by, on, decide_by, text, items)


def apply_for_repair(
    appeals: AppealRecords,
    records: VerifierRecords,
    record_id: str,
    evidence_text: str,
    *,
    by: FiledBy,
    evidence: Sequence[str] = (),
    on: date,
    department: str | None = None,
    decision_days: int = REPAIR_DECISION_DAYS,
    calendar: WorkingDays | None = None,
) -> Appeal:
    """Apply for credit repair of a published record, once its minimum period has passed
    (RepairTooEarlyError naming the earliest day before it); the department decides within
    `decision_days` working days. Nothing is stored when refused."""
    text = bounded_text("repair application", evidence_text)
    items = bounded_evidence(evidence)
    record = _listed_record(records, record_id, on, "a repair application")
    _acting_department(record, department)
    earliest = earliest_repair(record)
    if on < earliest:
        months = publication_period(record.severity).months_before_repair
        raise RepairTooEarlyError(record.id, record.severity, months, earliest, on)
    decide_by = (calendar or default_calendar()).add(on, decision_days).day
    return appeals.add("repair", record.id, record.department, by, on, decide_by, text, items)


def _open_appeal(
    actions: DepartmentActions, appeals: AppealRecords, appeal_id: str, kind: AppealKind
) -> Appeal:
    appeal = appeals.get(appeal_id)
    if appeal is None or appeal.kind != kind or appeal.department != actions.code:
        what = "objection" if kind == "objection" else "repair application"
        raise UnknownRecordError(f"no {what} {appeal_id} of {actions.code}")
    if not appeal.open:
        raise VerificationError(f"{appeal_id} was already decided: {appeal.state}")
    return appeal


def decide_objection(
    actions: DepartmentActions,
    appeals: AppealRecords,
    appeal_id: str,
    outcome: ObjectionOutcome,
    *,
    on: date,
    decided_by: str,
    reasons: str,
) -> Appeal:
    """The department's decision on an objection, with its reasons (kept, sealed).

    Upheld: the record is corrected (Corrected on chain, withdrawn from the list, the page
    and the public feed; the applicant readmitted). Rejected: it stays, the mark goes."""
    if outcome not in ("upheld", "rejected"):
        raise VerificationError(f"an objection is upheld or rejected, not {outcome}")
    text = bounded_text("decision's reasons", reasons)
    appeal = _open_appeal(actions, appeals, appeal_id, "objection")
    if outcome == "upheld":
        record = actions.records.breach(appeal.record_id)
        if record is None:
            raise UnknownRecordError(f"no breach record {appeal.record_id}")
        if record.status == "published":
            # The note goes to the outbox and its hash on chain: the appeal's id, never its text.
            actions.annul(record.id, on, f"objection {appeal.id} upheld")
        elif record.status != "corrected":  # corrected: an earlier attempt got that far
            raise VerificationError(
                f"breach {record.id} is {record.status}: it can no longer be corrected"
            )
    return appeals.decide(appeal.id, outcome, on, decided_by, text)


def decide_repair(
    actions: DepartmentActions,
    appeals: AppealRecords,
    appeal_id: str,
    outcome: RepairOutcome,
    *,
    on: date,
    decided_by: str,
    reasons: str,
) -> Appeal:
    """The department's decision on a repair application, with its reasons (kept, sealed).

    Granted: Repaired on chain, off public view, the exclusion lifted. Refused: it stays."""
    if outcome not in ("granted", "refused"):
        raise VerificationError(f"a repair application is granted or refused, not {outcome}")
    text = bounded_text("decision's reasons", reasons)
    appeal = _open_appeal(actions, appeals, appeal_id, "repair")
    if outcome == "granted":
        record = actions.records.breach(appeal.record_id)
        if record is None:
            raise UnknownRecordError(f"no breach record {appeal.record_id}")
        if record.status == "published":
            # Its hash goes on chain: the application's id, never what the applicant wrote.
            actions.repair(record.id, on, f"repair application {appeal.id} granted on {on}")
        elif record.status != "repaired":  # repaired: an earlier attempt got that far
            raise VerificationError(
                f"breach {record.id} is {record.status}: it can no longer be repaired"
            )
    return appeals.decide(appeal.id, outcome, on, decided_by, text)


def flag_overdue_appeals(actions: DepartmentActions, on: date) -> tuple[int, int]:
    """The lifecycle's step: open objections and repair applications of the department past
    their decision limit, flagged for it now (each once); how many of each."""
    flagged = AppealRecords(actions.store).flag_overdue(actions.code, on)
    objections = sum(1 for appeal in flagged if appeal.kind == "objection")
    return objections, len(flagged) - objections
