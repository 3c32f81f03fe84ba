"""The verification engine: decides due commitments, records outcomes and breaches on chain.

Every decision is written to the outcome outbox (with its signed report) before any
transaction; the outcome sender (sending.py) then records what the outbox holds. A run that
dies anywhere is resumed by the next: outcomes already on chain are recognised and not sent
again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from eth_account.signers.local import LocalAccount

from ledger import (
    LedgerContract,
    SigningKey,
    Status,
    hex32,
    keccak256,
    to_hash32,
)
from ledger.intake import Intake
from ledger.outbox import OutcomeOutbox, QueuedOutcome
from ledger.store import Store
from ledger.types import Hash32
from verifier.breaches import can_repair, earliest_repair
from verifier.calendar import WorkingDays, default_calendar
from verifier.catalog import Catalog
from verifier.engine.decide import Decider
from verifier.engine.sending import InFlight, OutcomeSender
from verifier.engine.summary import RunSummary
from verifier.engine.worker import ERASED, Decision, sign_decision
from verifier.errors import VerificationError
from verifier.records.facade import VerifierRecords
from verifier.reports import Outcome, SignedReport, evidence_hash
from verifier.rules import Comparison
from verifier.sources import DataSource

# Imported from here by the CLI, the service and the tests.
__all__ = [
    "STATUS_OF_OUTCOME",
    "EngineConfig",
    "RunSummary",
    "VerificationEngine",
    "VerificationError",
]

log = logging.getLogger("commitledger.verifier")

STATUS_OF_OUTCOME: dict[Outcome, Status] = {
    "kept": Status.KEPT,
    "mismatch": Status.MISMATCH,
    "needs_manual": Status.NEEDS_MANUAL,
    "false": Status.BREACHED,
}


# The contract's transitionAllowed for the outcomes the engine records (None: not yet
# materialised from its batch, as Anchored). A decision outside it would revert on chain.
_ALLOWED: dict[Status, frozenset[Status]] = {
    Status.NONE: frozenset({Status.KEPT, Status.MISMATCH, Status.NEEDS_MANUAL, Status.BREACHED}),
    Status.ANCHORED: frozenset(
        {Status.KEPT, Status.MISMATCH, Status.NEEDS_MANUAL, Status.BREACHED}
    ),
    Status.MISMATCH: frozenset({Status.KEPT, Status.NEEDS_MANUAL, Status.BREACHED}),
    Status.NEEDS_MANUAL: frozenset({Status.KEPT, Status.MISMATCH, Status.BREACHED}),
}


@dataclass(frozen=True)
class EngineConfig:
    """How much is done at once."""

    chunk: int = 500  # commitments decided together
    # A first outcome carries its Merkle proof and creates a record (about 45,000 gas), so
    # 300 stay well under one transaction's 16,777,216 gas cap (EIP-7825).
    outcomes_per_transaction: int = 300


class VerificationEngine:
    """Verification for one department, with that department's verifier account and key."""

    def __init__(
        self,
        *,
        department: str,
        store: Store,
        intake: Intake,
        ledger: LedgerContract,
        catalog: Catalog,
        sources: Mapping[str, DataSource],
        verifier: LocalAccount,
        report_key: SigningKey,
        registrar: LocalAccount | None = None,
        calendar: WorkingDays | None = None,
        config: EngineConfig | None = None,
        workers: int = 0,
    ) -> None:
        self.department = department
        self.store = store
        self.intake = intake
        self.ledger = ledger
        self.catalog = catalog
        self.verifier = verifier
        self.registrar = registrar
        self.report_key = report_key
        self.calendar = calendar or default_calendar()
        self.config = config or EngineConfig()
        self.records = VerifierRecords(store)
        self.outbox = OutcomeOutbox(store)
        self.decider = Decider(
            store, intake, ledger, catalog, sources, workers, reporter=(department, report_key)
        )
        self.sender = OutcomeSender(
            department=department,
            store=store,
            intake=intake,
            ledger=ledger,
            catalog=catalog,
            calendar=self.calendar,
            verifier=verifier,
            records=self.records,
            outbox=self.outbox,
            decider=self.decider,
            outcomes_per_transaction=self.config.outcomes_per_transaction,
        )
        # One loop for the engine's life: HTTP connections belong to the loop that opened them.
        self._loop = asyncio.new_event_loop()

    def close(self) -> None:
        """Close the data sources' connections, the worker processes and the event loop."""
        self.decider.close()
        for source in self.decider.sources.values():
            closing = getattr(source, "aclose", None)
            if closing is not None:
                self._loop.run_until_complete(closing())
        self._loop.close()

    # ------------------------------------------------------------------ scheduling and runs

    def schedule(self, on: date) -> int:
        """Schedule this department's newly anchored commitments (deadline: matter window)."""
        anchored = self.store.anchored(self.department)
        known = self.records.scheduled_among([h for h, _, _ in anchored])
        new = []
        for commitment, matter_code, received_at in anchored:
            if commitment in known:
                continue
            matter = self.catalog.matter(matter_code)
            signed_on = datetime.fromtimestamp(received_at, UTC).date()
            deadline = self.calendar.add(min(signed_on, on), matter.verification_window_days)
            new.append((commitment, matter.code, deadline))
        return self.records.schedule_many(new, self.department)

    def run(
        self, on: date, progress: Callable[[int], None] | None = None, limit: int | None = None
    ) -> RunSummary:
        """Verify everything awaiting verification, record outcomes, process overdue ones.

        While one chunk's outcome transactions are being mined the next chunk is decided.
        """
        summary = RunSummary()
        self.schedule(on)
        self.flush(summary)  # whatever a run that died left in the outbox
        # Whole transactions per chunk: 500 with 300 a transaction would send 300 + 200.
        step = self.config.outcomes_per_transaction
        chunk = self.config.chunk // step * step or self.config.chunk
        waiting = self.records.due(date.max, self.department, limit if limit is not None else 10**9)
        due = [v.commitment_hash for v in waiting]
        chunks = [due[start : start + chunk] for start in range(0, len(due), chunk)]
        mining: InFlight = []
        with self._loop_in_thread():
            for decisions in self.decider.decide_chunks(chunks, on, self._loop):
                fresh = self._queue(decisions, on, summary)
                sending = self.sender.broadcast(fresh, summary)
                self.sender.await_mined(mining, summary)  # the previous chunk's, mined meanwhile
                mining = sending
                summary.examined += len(decisions)
                if progress:
                    progress(len(decisions))
        self.sender.await_mined(mining, summary)
        self.process_overdue(on, summary)
        summary.overdue_flagged = len(self.records.flag_overdue(on, self.department))
        return summary

    @contextmanager
    def _loop_in_thread(self) -> Iterator[None]:
        """Run the data sources' loop in a thread of its own for a while: their requests
        proceed while this thread works on the chain."""
        thread = threading.Thread(target=self._loop.run_forever, name="verifier-io", daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            thread.join()

    def _report(self, decision: Decision, on: date, decided_by: str = "engine") -> SignedReport:
        if decision.report is not None and decided_by == "engine":
            return decision.report  # signed where it was decided
        return sign_decision(decision, self.department, on, self.report_key, decided_by)

    def _queue(
        self, decisions: Sequence[Decision], on: date, summary: RunSummary
    ) -> list[QueuedOutcome]:
        queued = []
        for decision in decisions:
            summary.outcomes[decision.outcome] += 1
            if decision.outcome == "integrity_failure":
                # Reported to the department, never verified: nothing goes on chain.
                log.warning(
                    "integrity failure: %s (%s)", hex32(decision.commitment_hash), decision.note
                )
                self.records.set_state(decision.commitment_hash, "integrity_failure")
                continue
            status = STATUS_OF_OUTCOME[decision.outcome]
            queued.append(self._entry(decision.commitment_hash, status, self._report(decision, on)))
        return self.outbox.enqueue(self.department, queued)

    @staticmethod
    def _entry(
        commitment: Hash32, status: Status, signed_report: SignedReport | dict[str, Any]
    ) -> tuple[Hash32, Status, Hash32, dict[str, Any]]:
        if isinstance(signed_report, SignedReport):
            return commitment, status, signed_report.evidence, signed_report.to_json_obj()
        evidence = evidence_hash(signed_report["report"])
        return commitment, status, evidence, signed_report

    # ------------------------------------------------------------------ the chain

    def flush(self, summary: RunSummary | None = None) -> int:
        """Record this department's queued outcomes on chain, in as few transactions as allowed."""
        return self.sender.flush(summary if summary is not None else RunSummary())

    # ------------------------------------------------------------------ department decisions

    def _manual_entry(
        self,
        commitment: Hash32,
        outcome: Outcome,
        on: date,
        decided_by: str,
        note: str,
        comparisons: tuple[Comparison, ...] = (),
    ) -> tuple[Hash32, Status, Hash32, dict[str, Any]]:
        stored = self.store.get(commitment)
        if stored is None or stored.department != self.department:
            raise VerificationError(f"{hex32(commitment)} is not a commitment of {self.department}")
        matter = self.catalog.matter(stored.matter_code)
        decision = Decision(commitment, matter, outcome, comparisons, note=note)
        return self._entry(
            commitment, STATUS_OF_OUTCOME[outcome], self._report(decision, on, decided_by)
        )

    def process_overdue(self, on: date, summary: RunSummary | None = None) -> int:
        """Mismatches whose rectification window passed with nothing supplied become breaches."""
        self.flush(summary)  # an earlier attempt's breaches first: never queued twice
        overdue = self.records.open_mismatches_past(on, self.department)
        entries = []
        for v in overdue:
            stored = self.store.get(v.commitment_hash)
            if stored is not None and stored.erased:
                # No document left to name the party of a breach record: a person decides.
                entry = self._manual_entry(v.commitment_hash, "needs_manual", on, "engine", ERASED)
            else:
                entry = self._manual_entry(
                    v.commitment_hash,
                    "false",
                    on,
                    "engine",
                    f"rectification overdue since {v.rectify_by}",
                    # the disagreements found, so that the breach record states them
                    _comparisons(v.report),
                )
            entries.append(entry)
        self.outbox.enqueue(self.department, entries)
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
        entry = self._manual_entry(commitment, outcome, on, decided_by, note)
        self.schedule(on)  # decided before any run: its verification must exist to move on
        self.flush()  # an earlier attempt's decision first: never queued twice
        # One the chain would refuse must not enter the outbox: it would block every flush.
        standing = self.ledger.status_of(commitment).status
        if entry[1] not in _ALLOWED.get(standing, frozenset()):
            raise VerificationError(
                f"{hex32(commitment)} is {standing.name} on chain: it cannot become {outcome}"
            )
        self.outbox.enqueue(self.department, [entry])
        self.flush()

    def withdraw(self, commitment: Hash32, on: date, note: str) -> None:
        """The applicant withdrew before the decision: no breach, but certificates are required."""
        if self.registrar is None:
            raise VerificationError("withdrawal needs the department's registrar account")
        evidence = self._manual_entry(commitment, "needs_manual", on, "registrar", note)[2]
        anchoring = self.store.anchoring_of(commitment)
        standing = self.ledger.status_of(commitment).status
        root: Hash32 = Hash32(bytes(32))
        proof: Sequence[Hash32] = ()
        if anchoring is not None and standing == Status.NONE:
            root, proof = anchoring[0].root, anchoring[1]
        self.ledger.withdraw(self.registrar, commitment, evidence, root, proof)
        self.schedule(on)
        self.records.set_state(commitment, "withdrawn")

    def repair(self, record_id: str, on: date, decision: str) -> None:
        """Repair a breach after its minimum period: on chain, then in the public list."""
        stored = self.records.stored_breach(record_id)
        if stored is None or stored.record.department != self.department:
            raise VerificationError(f"no breach {record_id} of {self.department}")
        if not can_repair(stored.record, on):
            raise VerificationError(
                f"breach {record_id} cannot be repaired before {earliest_repair(stored.record)}"
            )
        commitment = to_hash32(stored.record.commitment_hash)
        if self.ledger.status_of(commitment).status == Status.BREACHED:
            self.ledger.repair(self.verifier, commitment, keccak256(decision.encode("utf-8")))
        self.records.update_breach_status(record_id, "repaired", on)
        self._readmit(stored.fingerprint, on)

    def expire(self, on: date) -> list[str]:
        """Publication periods that ended: Expired on chain, off the public list."""
        self.flush()  # an earlier attempt's expiries first: never queued twice
        ended = self.records.ended_publications(on)
        mine = [b for b in ended if b.record.department == self.department]
        entries = []
        for stored in mine:
            commitment = to_hash32(stored.record.commitment_hash)
            if self.ledger.status_of(commitment).status == Status.BREACHED:
                report = {"report": {"expired": stored.record.id, "on": on.isoformat()}}
                entries.append(self._entry(commitment, Status.EXPIRED, report))
        self.outbox.enqueue(self.department, entries)
        self.flush()
        expired_ids = []
        for stored in self.records.expire_breaches(on):
            expired_ids.append(stored.record.id)
            self._readmit(stored.fingerprint, on)
        return expired_ids

    def annul(self, record_id: str, on: date, note: str) -> None:
        """An objection upheld (mistaken identity): Corrected on chain, off the list."""
        stored = self.records.stored_breach(record_id)
        if stored is None or stored.record.department != self.department:
            raise VerificationError(f"no breach {record_id} of {self.department}")
        commitment = to_hash32(stored.record.commitment_hash)
        self.flush()  # an earlier attempt's correction first: never queued twice
        if self.ledger.status_of(commitment).status == Status.BREACHED:
            report = {"report": {"corrected": record_id, "on": on.isoformat(), "note": note}}
            entry = self._entry(commitment, Status.CORRECTED, report)
            self.outbox.enqueue(self.department, [entry])
            self.flush()
        self.records.annul_breach(record_id)
        self._readmit(stored.fingerprint, on)

    def _readmit(self, fingerprint: bytes, on: date) -> None:
        if not self.records.unrepaired_breach_for(fingerprint, on):
            self.store.lift_exclusion(fingerprint)


def _comparisons(signed_report: dict[str, Any] | None) -> tuple[Comparison, ...]:
    """The comparisons of a recorded report, as the decider made them."""
    if not signed_report:
        return ()
    return tuple(
        Comparison(
            c["key"],
            c["verdict"],
            c["claimed"],
            c["observed"],
            c["detail"],
            tuple((first, last) for first, last in c.get("gaps", ())),
        )
        for c in signed_report["report"].get("comparisons", ())
    )
