"""Notices of a proposed breach (告知书): what was found, the evidence, the defence deadline
and how to answer, signed with the department's report key; and the outbox that queues
every Proposed outcome with its notice.

Nobody is published who was not told first (PIPL Art. 24; 告知、陈述申辩 before a
dishonesty record): a FALSE finding, or a rectification missed, is recorded on chain as
Proposed with the notice's hash as its evidence, and the contract accepts Breached only
from Proposed. `NoticingOutbox` makes that hold for every caller: a Proposed outcome
queued with its finding (the verification report) is queued with the notice made from it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from ledger import (
    Hash32,
    OutcomeEntry,
    OutcomeOutbox,
    QueuedOutcome,
    SigningKey,
    Status,
    Store,
    hex32,
)
from verifier.calendar import WorkingDays
from verifier.catalog import Matter
from verifier.reports import (
    OutboxReport,
    SignedReport,
    evidence_hash,
    outbox_report,
    report_bytes,
)

NOTICE_KIND = "notice_of_proposed_breach"
NOTICE_VERSION = 1
LEGAL_BASIS = (
    "《中华人民共和国个人信息保护法》第二十四条；失信记录认定前的告知与陈述申辩"
    " (PIPL Art. 24; notice and statement of defence before a dishonesty record)"
)
STATEMENT_ROUTE = "POST /v1/commitments/{commitment}/statement"
STATEMENT_COMMAND = "commitledger notices statement {commitment} --text-file <file>"

Proposer = Callable[[Hash32, SignedReport], SignedReport]
"""Makes the signed notice of a commitment's finding."""


def is_notice(report: OutboxReport) -> bool:
    """Whether an outbox report is a notice (the evidence of a Proposed outcome)."""
    return isinstance(report, SignedReport) and report.report.get("kind") == NOTICE_KIND


def sign_body(body: dict[str, Any], key: SigningKey) -> SignedReport:
    """Sign a body (a notice) as reports are signed: its canonical bytes, its hash the evidence."""
    data = report_bytes(body)
    return SignedReport(
        body,
        key.algorithm,
        key.public_key_b64(),
        base64.b64encode(key.sign(data)).decode("ascii"),
        evidence_hash(data),
    )


def defence_deadline(calendar: WorkingDays, start: date, matter: Matter) -> date:
    """The last day to answer: the matter's working days after `start` (delivery or issue)."""
    return calendar.add(start, matter.defence_working_days).day


def make_notice(
    finding: SignedReport,
    matter: Matter,
    *,
    department: str,
    key: SigningKey,
    on: date,
    calendar: WorkingDays,
    addressee: str | None,
) -> SignedReport:
    """The signed notice of a proposed breach. `addressee`: the applicant's masked name (the
    notice goes to them), or None; no identity number, nothing else personal."""
    commitment = str(finding.report["commitment_hash"])
    body: dict[str, Any] = {
        "version": NOTICE_VERSION,
        "kind": NOTICE_KIND,
        "title": "拟记入失信记录告知书 / Notice of a proposed breach record",
        "commitment_hash": commitment,
        "matter_code": matter.code,
        "matter": matter.name,
        "department": department,
        "outcome": "false",
        "comparisons": list(finding.report.get("comparisons", ())),
        "note": finding.note,
        "evidence": hex32(finding.evidence),
        "finding": finding.to_json_obj(),
        "as_of": on.isoformat(),
        "defence_working_days": matter.defence_working_days,
        "defence_by": defence_deadline(calendar, on, matter).isoformat(),
        "defence_counted_from": "delivery of this notice (issue day if delivered that day)",
        "answer": {
            "route": STATEMENT_ROUTE.format(commitment=commitment),
            "command": STATEMENT_COMMAND.format(commitment=commitment),
        },
        "legal_basis": LEGAL_BASIS,
        "issued_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if addressee is not None:
        body["addressee"] = addressee
    return sign_body(body, key)


class NoticingOutbox(OutcomeOutbox[OutboxReport]):
    """The outcome outbox, where a Proposed outcome always carries its notice: one queued
    with the finding is queued with the notice `proposer` makes of it (its hash the evidence)."""

    def __init__(self, store: Store, proposer: Proposer) -> None:
        super().__init__(store, outbox_report)
        self.proposer = proposer

    def enqueue(
        self,
        department: str,
        items: Sequence[OutcomeEntry[OutboxReport]],
        now: float | None = None,
    ) -> list[QueuedOutcome[OutboxReport]]:
        """Queue outcomes as `OutcomeOutbox.enqueue`, a Proposed one with its notice."""
        noticed = [self._noticed(item) for item in items]
        return super().enqueue(department, noticed, now)

    def _noticed(self, item: OutcomeEntry[OutboxReport]) -> OutcomeEntry[OutboxReport]:
        if item.status != Status.PROPOSED or is_notice(item.report):
            return item
        if not isinstance(item.report, SignedReport):
            raise ValueError("a proposed breach needs the signed report of its finding")
        return OutcomeEntry(
            item.commitment_hash, item.status, self.proposer(item.commitment_hash, item.report)
        )
