"""A department's own actions: withdraw, decide, rectify, repair, annul, expire, and overdue
mismatches made proposed breaches (the applicant notified; published after the defence,
`verifier.engine.defence`). Each is a few reads and a transaction or two, with the department's
accounts: no verification run (no data sources, no worker processes, no event loop).

Outcomes go through the outcome outbox as the run's do (queued, then sent), so a crash
between the two records nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

from ledger import (
    Hash32,
    Intake,
    LedgerContract,
    OutcomeEntry,
    Status,
    Store,
    hex32,
    keccak256,
    to_hash32,
)
from verifier.breaches import can_repair, earliest_repair
from verifier.calendar import WorkingDays, default_calendar
from verifier.catalog import Catalog
from verifier.engine.department import Department
from verifier.engine.sending import OutcomeSender, department_sender
from verifier.engine.summary import RunSummary
from verifier.engine.worker import ERASED, Decision, sign_decision
from verifier.errors import VerificationError
from verifier.records import RectificationRecords
from verifier.reports import ClosingNote, OutboxReport, Outcome, SignedReport, outbox_report
from verifier.rules import Comparison

Entry = OutcomeEntry[OutboxReport]
"""An outcome to queue, with its report."""

STATUS_OF_OUTCOME: dict[Outcome, Status] = {
    "kept": Status.KEPT,
    "mismatch": Status.MISMATCH,
    "needs_manual": Status.NEEDS_MANUAL,
    "false": Status.PROPOSED,  # published only after notice and defence (defence.py)
}

# The contract's transitionAllowed for the outcomes the engine records (None: not yet
# materialised from its batch, as Anchored). A decision outside it would revert on chain.
_ALLOWED: dict[Status, frozenset[Status]] = {
    Status.NONE: frozenset({Status.KEPT, Status.MISMATCH, Status.NEEDS_MANUAL, Status.PROPOSED}),
    Status.ANCHORED: frozenset(
        {Status.KEPT, Status.MISMATCH, Status.NEEDS_MANUAL, Status.PROPOSED}
    ),
    Status.MISMATCH: frozenset({Status.KEPT, Status.NEEDS_MANUAL, Status.PROPOSED}),
    Status.NEEDS_MANUAL: frozenset({Status.KEPT, Status.MISMATCH, Status.PROPOSED}),
    Status.PROPOSED: frozenset({Status.KEPT, Status.NEEDS_MANUAL}),  # a defence accepted
}


class DepartmentActions:
    """What a department does to its own commitments and breaches, outside a run."""

    def __init__(
        self,
        department: Department,
        *,
        store: Store,
        intake: Intake,
        ledger: LedgerContract,
        catalog: Catalog,
        calendar: WorkingDays | None = None,
        sender: OutcomeSender | None = None,
    ) -> None:
        """`sender`: the outcome sender to share (a run's); by default one of its own."""
        self.department = department
        self.code = department.code
        self.store = store
        self.ledger = ledger
        self.catalog = catalog
        self.calendar = calendar or default_calendar()
        if sender is None:
            sender = department_sender(
                department,
                store=store,
                intake=intake,
                ledger=ledger,
                catalog=catalog,
                calendar=self.calendar,
            )
        self.sender = sender
        self.records = sender.records
        self.outbox = sender.outbox

    # ------------------------------------------------------------------ scheduling, sending

    def schedule(self, on: date) -> int:
        """Schedule this department's newly anchored commitments (deadline: matter window)."""
        new = []
        for commitment, matter_code, received_at in self.records.unscheduled_anchored(self.code):
            matter = self.catalog.matter(matter_code)
            signed_on = datetime.fromtimestamp(received_at, UTC).date()
            deadline = self.calendar.add(min(signed_on, on), matter.verification_window_days)
            new.append((commitment, matter.code, deadline))
        return self.records.schedule_many(new, self.code)

    def flush(self, summary: RunSummary | None = None) -> int:
        """Record this department's queued outcomes on chain, in as few transactions as allowed."""
        return self.sender.flush(summary if summary is not None else RunSummary())

    def entry(
        self,
        commitment: Hash32,
        outcome: Outcome,
        on: date,
        decided_by: str,
        note: str,
        comparisons: tuple[Comparison, ...] = (),
    ) -> Entry:
        """A decision on one of this department's commitments, signed, ready to queue."""
        stored = self.store.get(commitment)
        if stored is None or stored.department != self.code:
            raise VerificationError(f"{hex32(commitment)} is not a commitment of {self.code}")
        matter = self.catalog.matter(stored.matter_code)
        decision = Decision(commitment, matter, outcome, comparisons, note=note)
        report = sign_decision(decision, self.code, on, self.department.report_key, decided_by)
        return OutcomeEntry(commitment, STATUS_OF_OUTCOME[outcome], report)

    # ------------------------------------------------------------------ decisions

    def process_overdue(self, on: date, summary: RunSummary | None = None) -> int:
        """Mismatches whose rectification window passed with nothing supplied become proposed
        breaches: the applicant is notified and may answer before anything is published."""
        self.flush(summary)  # an earlier attempt's breaches first: never queued twice
        overdue = self.records.open_mismatches_past(on, self.code)
        # Evidence filed in time waits for the department's decision, not for the calendar.
        waiting = RectificationRecords.awaiting_decision(
            self.store.engine, [v.commitment_hash for v in overdue]
        )
        overdue = [v for v in overdue if bytes(v.commitment_hash) not in waiting]
        entries = []
        for v in overdue:
            stored = self.store.get(v.commitment_hash)
            if stored is not None and stored.erased:
                # No document left to name the party of a breach record: a person decides.
                entry = self.entry(v.commitment_hash, "needs_manual", on, "engine", ERASED)
            else:
                entry = self.entry(
                    v.commitment_hash,
                    "false",
                    on,
                    "engine",
                    f"rectification overdue since {v.rectify_by}",
                    # the disagreements found, so that the breach record states them
                    _comparisons(v.report, v.evidence),
                )
            entries.append(entry)
        self.outbox.enqueue(self.code, entries)
        self.flush(summary)
        return len(entries)

    def rectify(self, commitment: Hash32, on: date, decided_by: str, note: str) -> None:
        """Evidence supplied in time (e.g. a transfer certificate): the mismatch is kept."""
        verification = self.records.verification(commitment)
        if verification is None or verification.state != "mismatch":
            raise VerificationError(f"{hex32(commitment)} has no open mismatch to rectify")
        if verification.rectify_by is not None and on > verification.rectify_by:
            raise VerificationError(
                f"the rectification window closed on {verification.rectify_by}: too late"
            )
        self.decide(commitment, "kept", on, decided_by, note)

    def decide(
        self, commitment: Hash32, outcome: Outcome, on: date, decided_by: str, note: str
    ) -> None:
        """A person's decision (after an on-site check, say), recorded like the engine's."""
        if outcome not in STATUS_OF_OUTCOME:
            raise VerificationError(
                f"a person decides kept, mismatch, needs_manual or false, not {outcome}"
            )
        entry = self.entry(commitment, outcome, on, decided_by, note)
        self.schedule(on)  # decided before any run: its verification must exist to move on
        self.flush()  # an earlier attempt's decision first: never queued twice
        # One the chain would refuse must not enter the outbox: it would block every flush.
        standing = self.ledger.status_of(self.department.id, commitment).status
        if entry.status not in _ALLOWED.get(standing, frozenset()):
            raise VerificationError(
                f"{hex32(commitment)} is {standing.name} on chain: it cannot become {outcome}"
            )
        [queued] = self.outbox.enqueue(self.code, [entry])
        self.flush()
        refused = self.outbox.abandoned([queued.id]).get(queued.id)
        if refused is not None:  # set aside, blocking nothing: say why (the service's 409)
            raise VerificationError(f"the contract refuses this outcome: {refused}")

    def withdraw(self, commitment: Hash32, on: date, note: str) -> None:
        """The applicant withdrew before the decision: no breach, but certificates are required."""
        registrar = self.department.registrar
        if registrar is None:
            raise VerificationError("withdrawal needs the department's registrar account")
        evidence = self.entry(commitment, "needs_manual", on, "registrar", note).evidence
        anchoring = self.store.anchoring_of(commitment)
        standing = self.ledger.status_of(self.department.id, commitment).status
        root: Hash32 = Hash32(bytes(32))
        proof: Sequence[Hash32] = ()
        if anchoring is not None and standing == Status.NONE:
            root, proof = anchoring[0].root, anchoring[1]
        self.ledger.withdraw(registrar, commitment, evidence, root, proof)
        self.schedule(on)
        self.records.set_state(commitment, "withdrawn")

    # ------------------------------------------------------------------ breaches

    def repair(self, record_id: str, on: date, decision: str) -> None:
        """Repair a breach after its minimum period: on chain, then in the public list."""
        stored = self.records.stored_breach(record_id)
        if stored is None or stored.record.department != self.code:
            raise VerificationError(f"no breach {record_id} of {self.code}")
        if not can_repair(stored.record, on):
            raise VerificationError(
                f"breach {record_id} cannot be repaired before {earliest_repair(stored.record)}"
            )
        commitment = to_hash32(stored.record.commitment_hash)
        if self.ledger.status_of(self.department.id, commitment).status == Status.BREACHED:
            verifier = self.department.verifier
            self.ledger.repair(verifier, commitment, keccak256(decision.encode("utf-8")))
        self.records.update_breach_status(record_id, "repaired", on)
        self._readmit(stored.fingerprint, on)

    def expire(self, on: date) -> list[str]:
        """Publication periods that ended: Expired on chain, off the public list."""
        self.send_expiries(on)
        return self.close_expired(on)

    def send_expiries(self, on: date) -> int:
        """The first half of `expire`: Expired on chain for each publication that ended
        before `on` (queued, then sent); how many were queued now."""
        self.flush()  # an earlier attempt's expiries first: never queued twice
        ended = self.records.ended_publications(on)
        mine = [b for b in ended if b.record.department == self.code]
        entries: list[Entry] = []
        for stored in mine:
            commitment = to_hash32(stored.record.commitment_hash)
            if self.ledger.status_of(self.department.id, commitment).status == Status.BREACHED:
                note = ClosingNote.of({"expired": stored.record.id, "on": on.isoformat()})
                entries.append(OutcomeEntry(commitment, Status.EXPIRED, note))
        self.outbox.enqueue(self.code, entries)
        self.flush()
        return len(entries)

    def close_expired(self, on: date) -> list[str]:
        """The second half of `expire`: each ended publication of this department that is
        Expired on chain goes off the public list, its applicant readmitted unless another
        breach is listed; the record ids. The chain first: a record still BREACHED there
        (its expiry not sent yet) stays listed until it is."""
        expired_ids = []
        for stored in self.records.ended_publications(on):
            if stored.record.department != self.code:
                continue  # another department's: its own job expires it, chain first
            commitment = to_hash32(stored.record.commitment_hash)
            if self.ledger.status_of(self.department.id, commitment).status == Status.BREACHED:
                continue
            self.records.update_breach_status(stored.record.id, "expired", on)
            expired_ids.append(stored.record.id)
            self._readmit(stored.fingerprint, on)
        return expired_ids

    def annul(self, record_id: str, on: date, note: str) -> None:
        """An objection upheld (mistaken identity): Corrected on chain, off the list."""
        stored = self.records.stored_breach(record_id)
        if stored is None or stored.record.department != self.code:
            raise VerificationError(f"no breach {record_id} of {self.code}")
        commitment = to_hash32(stored.record.commitment_hash)
        self.flush()  # an earlier attempt's correction first: never queued twice
        if self.ledger.status_of(self.department.id, commitment).status == Status.BREACHED:
            body = {"corrected": record_id, "on": on.isoformat(), "note": note}
            entry: Entry = OutcomeEntry(commitment, Status.CORRECTED, ClosingNote.of(body))
            self.outbox.enqueue(self.code, [entry])
            self.flush()
        self.records.annul_breach(record_id)
        self._readmit(stored.fingerprint, on)

    def _readmit(self, fingerprint: bytes, on: date) -> None:
        if not self.records.unrepaired_breach_for(fingerprint, on):
            self.store.lift_exclusion(fingerprint)


def _comparisons(
    signed_report: dict[str, object] | None, evidence: Hash32 | None
) -> tuple[Comparison, ...]:
    """The comparisons of a recorded report, as the decider made them."""
    if not signed_report:
        return ()
    report = outbox_report(dict(signed_report), evidence)
    return report.comparisons() if isinstance(report, SignedReport) else ()
