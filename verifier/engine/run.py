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
from datetime import date

from ledger import Hash32, Intake, LedgerContract, OutcomeEntry, Store, hex32
from verifier.calendar import WorkingDays, default_calendar
from verifier.catalog import Catalog, default_catalog
from verifier.engine.actions import STATUS_OF_OUTCOME, DepartmentActions, Entry
from verifier.engine.decide import Decider
from verifier.engine.department import Department
from verifier.engine.sending import (
    OUTCOMES_PER_TRANSACTION,
    InFlight,
    OutcomeSender,
    Queued,
    department_sender,
)
from verifier.engine.summary import RunSummary
from verifier.engine.tasks import TaskDesk
from verifier.engine.worker import Decision, sign_decision
from verifier.errors import VerificationError
from verifier.reports import Outcome, SignedReport
from verifier.sources import DataSource

# Imported from here by the CLI, the service and the tests.
__all__ = [
    "STATUS_OF_OUTCOME",
    "Department",
    "EngineConfig",
    "RunSummary",
    "VerificationEngine",
    "VerificationError",
    "engine_for",
]

log = logging.getLogger("commitledger.verifier")


@dataclass(frozen=True)
class EngineConfig:
    """How much is done at once."""

    # Commitments decided together: two whole transactions of outcomes. Each chunk costs a
    # dozen statements and a hand-off to the workers whatever its size; 600 rather than 300
    # cut the main thread's CPU by about a tenth (bench, 10,000).
    chunk: int = 600
    outcomes_per_transaction: int = OUTCOMES_PER_TRANSACTION  # under one transaction's gas cap


class VerificationEngine:
    """Verification for one department, with that department's verifier account and key."""

    def __init__(
        self,
        department: Department,
        *,
        store: Store,
        intake: Intake,
        ledger: LedgerContract,
        catalog: Catalog,
        sources: Mapping[str, DataSource],
        calendar: WorkingDays | None = None,
        config: EngineConfig | None = None,
        workers: int = 0,
    ) -> None:
        """Prefer `engine_for`, which fills in the defaults."""
        self.department = department.code
        self.verifier = department.verifier
        self.registrar = department.registrar
        self.report_key = department.report_key
        self.store = store
        self.intake = intake
        self.ledger = ledger
        self.catalog = catalog
        self.calendar = calendar or default_calendar()
        self.config = config or EngineConfig()
        self.decider = Decider(
            store,
            intake,
            ledger,
            catalog,
            sources,
            workers,
            reporter=(department.code, department.report_key),
        )
        self.actions = DepartmentActions(
            department,
            store=store,
            intake=intake,
            ledger=ledger,
            catalog=catalog,
            calendar=self.calendar,
            sender=self._sender(department, store, intake, ledger, catalog),
        )
        self.sender = self.actions.sender
        # Checks a person makes, sampling and future obligations (verifier.engine.tasks).
        self.tasks = TaskDesk(self.actions)
        self.records = self.actions.records
        self.outbox = self.actions.outbox
        # One loop for the engine's life: HTTP connections belong to the loop that opened them.
        self._loop = asyncio.new_event_loop()

    def _sender(
        self,
        department: Department,
        store: Store,
        intake: Intake,
        ledger: LedgerContract,
        catalog: Catalog,
    ) -> OutcomeSender:
        return department_sender(
            department,
            store=store,
            intake=intake,
            ledger=ledger,
            catalog=catalog,
            calendar=self.calendar,
            # the proofs of the commitments just decided were read for the integrity check
            recent_anchorings=lambda: self.decider.recent_anchorings,
            recent_applicant=self.decider.recent_applicant,
            outcomes_per_transaction=self.config.outcomes_per_transaction,
        )

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
        return self.actions.schedule(on)

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
        due = [v.commitment_hash for v in self.tasks.ripe(waiting, on)]
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
        self.tasks.settle_all(on)  # tasks finished since their outcome was recorded
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

    def _report(self, decision: Decision, on: date) -> SignedReport:
        if decision.report is not None:
            return decision.report  # signed where it was decided
        return sign_decision(decision, self.department, on, self.report_key)

    def _queue(self, decisions: Sequence[Decision], on: date, summary: RunSummary) -> list[Queued]:
        queued: list[Entry] = []
        for decision in self.tasks.apply_many(decisions, on):
            summary.outcomes[decision.outcome] += 1
            if decision.outcome == "integrity_failure":
                # Reported to the department, never verified: nothing goes on chain.
                log.warning(
                    "integrity failure: %s (%s)", hex32(decision.commitment_hash), decision.note
                )
                self.records.set_state(decision.commitment_hash, "integrity_failure")
                continue
            status = STATUS_OF_OUTCOME[decision.outcome]
            report = self._report(decision, on)
            queued.append(OutcomeEntry(decision.commitment_hash, status, report))
        return self.outbox.enqueue(self.department, queued)

    # ------------------------------------------------------------------ the chain

    def flush(self, summary: RunSummary | None = None) -> int:
        """Record this department's queued outcomes on chain, in as few transactions as allowed."""
        return self.sender.flush(summary if summary is not None else RunSummary())

    # ------------------------------------------------------------------ department actions

    def process_overdue(self, on: date, summary: RunSummary | None = None) -> int:
        """Mismatches whose rectification window passed with nothing supplied become breaches."""
        return self.actions.process_overdue(on, summary)

    def rectify(self, commitment: Hash32, on: date, decided_by: str, note: str) -> None:
        """Evidence supplied in time (e.g. a transfer certificate): the mismatch is kept."""
        self.actions.rectify(commitment, on, decided_by, note)

    def decide(
        self, commitment: Hash32, outcome: Outcome, on: date, decided_by: str, note: str
    ) -> None:
        """A person's decision (after an on-site check, say), recorded like the engine's."""
        self.actions.decide(commitment, outcome, on, decided_by, note)

    def withdraw(self, commitment: Hash32, on: date, note: str) -> None:
        """The applicant withdrew before the decision: no breach, but certificates are required."""
        self.actions.withdraw(commitment, on, note)

    def repair(self, record_id: str, on: date, decision: str) -> None:
        """Repair a breach after its minimum period: on chain, then in the public list."""
        self.actions.repair(record_id, on, decision)

    def expire(self, on: date) -> list[str]:
        """Publication periods that ended: Expired on chain, off the public list."""
        return self.actions.expire(on)

    def annul(self, record_id: str, on: date, note: str) -> None:
        """An objection upheld (mistaken identity): Corrected on chain, off the list."""
        self.actions.annul(record_id, on, note)


def engine_for(
    department: Department,
    *,
    store: Store,
    intake: Intake,
    ledger: LedgerContract,
    catalog: Catalog | None = None,
    sources: Mapping[str, DataSource] | None = None,
    config: EngineConfig | None = None,
    workers: int = 0,
) -> VerificationEngine:
    """The verification engine of `department` on this store and chain: the one way the
    command line, the service, the demo and the benchmarks build one. No `sources`: nothing
    can be compared, every commitment due is recorded NEEDS_MANUAL. `workers`: processes
    that check documents and sign reports (0: this process does)."""
    return VerificationEngine(
        department,
        store=store,
        intake=intake,
        ledger=ledger,
        catalog=catalog if catalog is not None else default_catalog(),
        sources=sources if sources is not None else {},
        config=config,
        workers=workers,
    )
