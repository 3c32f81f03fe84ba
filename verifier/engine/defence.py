"""The statement-and-defence period (陈述申辩) of a proposed breach, and its end: the
applicant's statement kept (sealed), the officer's decision on it, the officer's early
confirmation, and publication when the period ends without a successful defence.

A proposed breach is published only by a decision that names who made it: the officer (who
confirmed it, or rejected the statement, with reasons) or "defence period ended" (the
lifecycle job, once the period counted from the notice's delivery ended with no statement
filed). A statement filed waits for the officer: the job never publishes over it. Each
decision is a signed report on chain (Breached, or Kept, NeedsManual or Corrected when the
defence succeeds) whose note carries the reasons; the notice is settled with it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date
from typing import Literal

from ledger import Hash32, OutcomeEntry, Status, Store, Vault, hex32
from verifier.engine.actions import DepartmentActions, Entry
from verifier.engine.notices import sign_body
from verifier.engine.summary import RunSummary
from verifier.engine.worker import Decision, sign_decision
from verifier.errors import VerificationError
from verifier.records import (
    MAX_REASONS,
    MAX_STATEMENT,
    Notice,
    NoticeClosedError,
    NoticeRecords,
    Statement,
    StatementBy,
    bounded_defence_text,
)
from verifier.reports import Outcome
from verifier.rules import Comparison

log = logging.getLogger("commitledger.verifier.defence")

LAPSED = "defence period ended"  # who decides a publication when the period ran out
DefenceOutcome = Literal["kept", "needs_manual", "corrected"]
_DEFENDED_STATUS: dict[DefenceOutcome, Status] = {
    "kept": Status.KEPT,
    "needs_manual": Status.NEEDS_MANUAL,
    "corrected": Status.CORRECTED,
}


@dataclass(frozen=True)
class DefenceSummary:
    """What the defence step of a lifecycle job did."""

    published: tuple[str, ...]  # commitment hashes published because the period ended
    awaiting_officer: int  # lapsed with a statement filed: the officer decides


def file_statement(
    store: Store,
    vault: Vault,
    commitment: Hash32,
    text: object,
    *,
    filed_by: StatementBy = "applicant",
    on: date | None = None,
    now: float | None = None,
) -> Statement:
    """Keep the applicant's statement against the open notice of `commitment`, sealed.

    `text`: 1 to MAX_STATEMENT characters (StatementError otherwise, nothing stored);
    NoticeClosedError when no breach of it is proposed, or its period ended before `on`.
    The text is personal data: it is never logged."""
    value = bounded_defence_text(text, MAX_STATEMENT, "statement")
    records = NoticeRecords(store)
    notice = records.open_for(commitment)
    if notice is None:
        raise NoticeClosedError(f"no breach of {hex32(commitment)} is proposed: nothing to answer")
    if on is not None and on > notice.defence_by:
        raise NoticeClosedError(f"the defence period ended on {notice.defence_by.isoformat()}")
    statement = records.add_statement(
        notice, vault, value, filed_by, time.time() if now is None else now
    )
    log.info("statement filed against notice %d", notice.id)
    return statement


def open_notice(actions: DepartmentActions, commitment: Hash32) -> Notice:
    """The open notice of one of the department's commitments; VerificationError if none."""
    actions.flush()  # a decision an earlier attempt queued first: it may settle the notice
    notice = NoticeRecords(actions.store).open_for(commitment)
    if notice is None or notice.department != actions.code:
        raise VerificationError(f"{hex32(commitment)} has no proposed breach of {actions.code}")
    return notice


def confirm_breach(
    actions: DepartmentActions,
    commitment: Hash32,
    on: date,
    officer: str,
    reasons: str,
    summary: RunSummary | None = None,
) -> list[str]:
    """The officer publishes a proposed breach before its period ends (or over a statement
    not accepted), with reasons: Breached on chain, the breach registry, the exclusion.
    The breach records published (also added to `summary.breaches`)."""
    why = bounded_defence_text(reasons, MAX_REASONS, "reasons")
    who = bounded_defence_text(officer, 200, "officer")
    notice = open_notice(actions, commitment)
    note = f"公布 / published, confirmed by the officer: {why}"
    return _decide(actions, notice, "false", on, who, note, summary)


def decide_statement(
    actions: DepartmentActions,
    commitment: Hash32,
    on: date,
    officer: str,
    *,
    accept: bool,
    reasons: str,
    outcome: DefenceOutcome = "kept",
) -> None:
    """The officer decides the applicant's statement: rejected publishes the breach, accepted
    ends it as `outcome` (kept, needs_manual or corrected); the reasons go in the report."""
    why = bounded_defence_text(reasons, MAX_REASONS, "reasons")
    who = bounded_defence_text(officer, 200, "officer")
    notice = open_notice(actions, commitment)
    if accept:
        if outcome not in _DEFENDED_STATUS:
            raise VerificationError(
                f"a defence accepted ends kept, needs_manual or corrected, not {outcome}"
            )
        _decide(actions, notice, outcome, on, who, f"陈述申辩成立 / defence accepted: {why}")
    else:
        _decide(actions, notice, "false", on, who, f"陈述申辩不成立 / statement rejected: {why}")


def publish_lapsed(actions: DepartmentActions, on: date) -> DefenceSummary:
    """Publish each proposed breach of the department whose notice was delivered and whose
    defence period ended before `on` with no statement filed; safe to run again."""
    actions.flush()  # an earlier attempt's publications first: never queued twice
    records = NoticeRecords(actions.store)
    published, waiting = [], 0
    for notice in records.lapsed(actions.code, on):
        if records.statements_of(notice):
            waiting += 1  # the officer decides a statement: never published over it
            continue
        note = (
            "公布 / published: the defence period ended on "
            f"{notice.defence_by.isoformat()} with no statement filed"
        )
        _decide(actions, notice, "false", on, LAPSED, note)
        published.append(hex32(notice.commitment_hash))
    return DefenceSummary(tuple(published), waiting)


def _decide(
    actions: DepartmentActions,
    notice: Notice,
    outcome: Literal["false"] | DefenceOutcome,
    on: date,
    decided_by: str,
    note: str,
    summary: RunSummary | None = None,
) -> list[str]:
    """The decision on a proposed breach, signed and recorded on chain; the sender settles
    the notice and, for a breach, publishes it: the breach records published."""
    commitment = notice.commitment_hash
    standing = actions.ledger.status_of(actions.department.id, commitment).status
    if standing != Status.PROPOSED:
        raise VerificationError(f"{hex32(commitment)} is {standing.name} on chain, not Proposed")
    matter = actions.catalog.matter(str(notice.body["matter_code"]))
    comparisons = tuple(Comparison.from_json_obj(c) for c in notice.body.get("comparisons", ()))
    key = actions.department.report_key
    reported: Outcome
    if outcome == "false":
        status, reported = Status.BREACHED, "false"
    else:
        status, reported = _DEFENDED_STATUS[outcome], _report_outcome(outcome)
    decision = Decision(commitment, matter, reported, comparisons, note=note)
    report = sign_decision(decision, actions.code, on, key, decided_by)
    if outcome == "corrected":  # the finding annulled: the report says so, signed again
        report = sign_body(dict(report.report, outcome="corrected"), key)
    entry: Entry = OutcomeEntry(commitment, status, report)
    [queued] = actions.outbox.enqueue(actions.code, [entry])
    counted = summary if summary is not None else RunSummary()
    before = len(counted.breaches)
    actions.flush(counted)
    refused = actions.outbox.abandoned([queued.id]).get(queued.id)
    if refused is not None:
        raise VerificationError(f"the contract refuses this decision: {refused}")
    return counted.breaches[before:]


def _report_outcome(outcome: DefenceOutcome) -> Outcome:
    return "needs_manual" if outcome == "needs_manual" else "kept"
