"""The verification engine: decides due commitments, records outcomes and breaches on chain.

Every decision is written to the outcome outbox (with its signed report) before any
transaction; the chain part then records what the outbox holds. A run that dies anywhere
is resumed by the next: outcomes already on chain are recognised and not sent again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from eth_account.signers.local import LocalAccount

from ledger import (
    ChainError,
    LedgerContract,
    OutcomeItem,
    SigningKey,
    Status,
    canonical_bytes,
    hex32,
    keccak256,
    to_hash32,
)
from ledger.intake import Intake
from ledger.outbox import OutcomeOutbox, QueuedOutcome
from ledger.store import Store
from ledger.types import Hash32

from .breaches import BreachEvidence, can_repair, earliest_repair, make_breach_record
from .calendar import WorkingDays, default_calendar
from .catalog import Catalog, Matter
from .decide import ERASED, Decider, Decision, sign_decision
from .records import RecordedOutcome, VerificationState, VerifierRecords
from .reports import Outcome, SignedReport
from .rules import Comparison
from .sources import DataSource

log = logging.getLogger("commitledger.verifier")

STATUS_OF_OUTCOME: dict[Outcome, Status] = {
    "kept": Status.KEPT,
    "mismatch": Status.MISMATCH,
    "needs_manual": Status.NEEDS_MANUAL,
    "false": Status.BREACHED,
}
_STATE_OF_STATUS: dict[Status, VerificationState] = {
    Status.KEPT: "kept",
    Status.MISMATCH: "mismatch",
    Status.NEEDS_MANUAL: "manual",
    Status.BREACHED: "breached",
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


class VerificationError(Exception):
    """An action the engine refuses: wrong state, wrong department, too early."""


@dataclass(frozen=True)
class EngineConfig:
    """How much is done at once."""

    chunk: int = 500  # commitments decided together
    # A first outcome carries its Merkle proof and creates a record (about 45,000 gas), so
    # 300 stay well under one transaction's 16,777,216 gas cap (EIP-7825).
    outcomes_per_transaction: int = 300


@dataclass
class RunSummary:
    """What one verification run did."""

    examined: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    transactions: int = 0
    gas_used: int = 0
    recorded: int = 0
    breaches: list[str] = field(default_factory=list)
    overdue_flagged: int = 0
    abandoned: int = 0

    def to_json_obj(self) -> dict[str, object]:
        """The summary as plain JSON."""
        return {
            "examined": self.examined,
            "outcomes": dict(self.outcomes),
            "transactions": self.transactions,
            "gas_used": self.gas_used,
            "recorded_on_chain": self.recorded,
            "breaches": self.breaches,
            "overdue_flagged": self.overdue_flagged,
            "abandoned": self.abandoned,
        }


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
        mining: list[tuple[list[QueuedOutcome], bytes]] = []
        with self._loop_in_thread():
            for decisions in self.decider.decide_chunks(chunks, on, self._loop):
                fresh = self._queue(decisions, on, summary)
                sending = self._broadcast(fresh, summary)
                self._await(mining, summary)  # the previous chunk's, mined meanwhile
                mining = sending
                summary.examined += len(decisions)
                if progress:
                    progress(len(decisions))
        self._await(mining, summary)
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
        evidence = keccak256(canonical_bytes(signed_report["report"]))
        return commitment, status, evidence, signed_report

    # ------------------------------------------------------------------ the chain

    def flush(self, summary: RunSummary | None = None) -> int:
        """Record this department's queued outcomes on chain, in as few transactions as allowed."""
        summary = summary if summary is not None else RunSummary()
        queued = self.outbox.open(self.department)
        fresh = [q for q in queued if not self._settled(q, summary)]
        self._send(fresh, summary)
        return len(queued)

    def _settled(self, queued: QueuedOutcome, summary: RunSummary) -> bool:
        """Sent before a crash and mined, or already on chain by another way: record it."""
        if queued.tx_hash is not None:
            receipt = self.ledger.chain.receipt(queued.tx_hash)
            if receipt is not None and receipt["status"] == 1:
                block = int(receipt["blockNumber"])
                summary.breaches += self._recorded([queued], queued.tx_hash, block)
                return True
        return False

    def _items(
        self, queued: Sequence[QueuedOutcome], states: Mapping[bytes, str]
    ) -> list[OutcomeItem]:
        # The proofs of the commitments just decided were read for the integrity check.
        known = self.decider.recent_anchorings
        missing = [q.commitment_hash for q in queued if q.commitment_hash not in known]
        anchorings = {**self.store.anchorings_of(missing), **known} if missing else known
        items = []
        for q in queued:
            anchoring = anchorings.get(q.commitment_hash)
            # Only the first outcome of a batch member proves membership (and creates its record).
            first = states.get(q.commitment_hash, "due") in ("due", "integrity_failure")
            if first and anchoring is not None:
                root, proof = anchoring
                items.append(OutcomeItem(q.commitment_hash, q.status, q.evidence, root, proof))
            else:
                items.append(OutcomeItem(q.commitment_hash, q.status, q.evidence))
        return items

    def _send(self, queued: Sequence[QueuedOutcome], summary: RunSummary) -> None:
        """Send the outcomes and wait until they are recorded."""
        self._await(self._broadcast(queued, summary), summary)

    def _broadcast(
        self, queued: Sequence[QueuedOutcome], summary: RunSummary
    ) -> list[tuple[list[QueuedOutcome], bytes]]:
        """Send the outcomes in transactions of at most `outcomes_per_transaction` and under
        one transaction's gas cap, all of them before waiting for any: they touch different
        commitments, so they do not conflict."""
        todo: list[QueuedOutcome] = []
        for item in queued:
            # Only an outcome sent before (its transaction lost, say) can be on chain already.
            if item.tx_hash is not None:
                standing = self.ledger.status_of(item.commitment_hash).status
                if standing == item.status:
                    block = self.ledger.chain.block_number()
                    summary.breaches += self._recorded([item], item.tx_hash, block)
                    continue
            todo.append(item)
        todo, states = self._drop_refused(todo, summary)
        chain = self.ledger.chain
        in_flight: list[tuple[list[QueuedOutcome], bytes]] = []
        every = self._items(todo, states)
        for part, items in _transactions(todo, every, self.config.outcomes_per_transaction):
            builder = self.ledger.outcomes_builder(items)
            tx = chain.prepare(
                self.verifier, builder, abi=self.ledger.abi, gas=_gas_for(part, items)
            )
            signed = chain.sign(self.verifier, tx)
            self.outbox.mark_sent([q.id for q in part], signed.tx_hash)  # before the broadcast
            chain.broadcast(self.verifier, signed, abi=self.ledger.abi)
            in_flight.append((part, signed.tx_hash))
        return in_flight

    def _await(
        self, in_flight: Sequence[tuple[list[QueuedOutcome], bytes]], summary: RunSummary
    ) -> None:
        """Wait for sent outcome transactions and record what they recorded."""
        chain = self.ledger.chain
        reverted = []
        for part, tx_hash in in_flight:
            mined = chain.wait_mined(tx_hash)
            summary.transactions += 1
            summary.gas_used += mined.gas_used
            if mined.status != 1:
                # Mined but reverted (the chain changed after the estimate): nothing recorded.
                reverted.append(hex32(Hash32(tx_hash)))
                continue
            summary.recorded += len(part)
            summary.breaches += self._recorded(part, tx_hash, mined.block_number)
        if reverted:
            raise ChainError(f"outcome transactions failed on chain: {', '.join(reverted)}")

    def _drop_refused(
        self, queued: list[QueuedOutcome], summary: RunSummary
    ) -> tuple[list[QueuedOutcome], dict[bytes, str]]:
        """Abandon outcomes the status machine refuses now (the commitment moved on since they
        were queued: withdrawn, decided by someone else); one would revert the whole batch.
        Returns the others and the verification states it read."""
        if not queued:
            return queued, {}
        states = self.records.states_of([q.commitment_hash for q in queued])
        suspects = [
            q
            for q in queued
            if states.get(q.commitment_hash, "due") not in ("due", "integrity_failure")
        ]
        refused = [
            item
            for item in suspects
            if not self.ledger.transition_allowed(
                self.ledger.status_of(item.commitment_hash).status, item.status
            )
        ]
        if refused:
            reason = "the contract refuses this move now: the commitment changed since"
            self.outbox.abandon([q.id for q in refused], reason)
            summary.abandoned += len(refused)
            for item in refused:
                log.warning(
                    "abandoned outcome %s for %s", item.status.name, hex32(item.commitment_hash)
                )
        dropped = {q.id for q in refused}
        return [q for q in queued if q.id not in dropped], states

    def _recorded(self, queued: Sequence[QueuedOutcome], tx_hash: bytes, block: int) -> list[str]:
        """Outcomes are on chain: move their verifications on; publish breaches."""
        # Verifications and breaches first, the outbox last: after a crash in between, the
        # outbox entry is found mined and recorded again, and every step here is idempotent.
        entries, breached = [], []
        for item in queued:
            state = _STATE_OF_STATUS.get(item.status)
            if state is None:
                continue  # expiry, correction: the caller updates the breach record
            report = item.report["report"]
            as_of = date.fromisoformat(report["as_of"])
            matter = self.catalog.matter(report["matter_code"])
            rectify_by = None
            if state == "mismatch":
                rectify_by = self.calendar.add(as_of, matter.rectification_window_days).day
            entries.append(
                RecordedOutcome(
                    item.commitment_hash,
                    state,
                    int(item.status),
                    item.evidence,
                    item.report,
                    tx_hash,
                    block,
                    rectify_by,
                )
            )
            if item.status == Status.BREACHED:
                breached.append((item, matter, as_of))
        self.records.record_outcomes(entries)
        published = [
            self._publish_breach(item, matter, tx_hash, block, as_of)
            for item, matter, as_of in breached
        ]
        self.outbox.mark_recorded([q.id for q in queued], tx_hash, block)
        return published

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

    # ------------------------------------------------------------------ breaches

    def _publish_breach(
        self, item: QueuedOutcome, matter: Matter, tx_hash: bytes, block: int, on: date
    ) -> str:
        signed = self.intake.open_document(item.commitment_hash)
        if signed is None:
            raise VerificationError(f"no document for {hex32(item.commitment_hash)}")
        record = make_breach_record(
            signed.document.applicant,
            matter,
            item.commitment_hash,
            facts=_facts(item.report, matter),
            decision=f"撤销{matter.name}审批决定，记入失信记录",
            document_number=f"京{self.department}承诺〔{on.year}〕{item.id:06d}号",
            decision_date=on,
            evidence=BreachEvidence(
                chain_id=self.ledger.chain.chain_id,
                contract=self.ledger.address,
                transaction=hex32(tx_hash),
                block=block,
                commitment_hash=hex32(item.commitment_hash),
            ),
        )
        applicant = signed.document.applicant
        fingerprint = self.intake.vault.fingerprint(applicant.id_type, applicant.id_number)
        if self.records.breach(record.id) is None:  # published before a crash: keep that one
            self.records.add_breach(record, fingerprint)
        # Excluded from the commitment route until the breach is repaired or expires.
        self.store.exclude(fingerprint, item.commitment_hash)
        log.info("breach %s published", record.id)
        return record.id


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


# Gas of one recordOutcomes item, measured with forge, with margin: a first outcome creates
# a record (about 40,000 in a batch with a depth-10 proof; about 750 more per proof node);
# a breach also counts and logs (about 47,000 more).
_GAS_BASE, _GAS_ITEM, _GAS_PER_PROOF_NODE, _GAS_BREACH = 60_000, 40_000, 1_000, 55_000
_GAS_CAP = 16_000_000  # under one transaction's 16,777,216 (EIP-7825)


def _item_gas(item: OutcomeItem) -> int:
    breach = _GAS_BREACH if item.outcome == Status.BREACHED else 0
    return _GAS_ITEM + _GAS_PER_PROOF_NODE * len(item.proof) + breach


def _transactions(
    queued: Sequence[QueuedOutcome], items: Sequence[OutcomeItem], most: int
) -> Iterator[tuple[list[QueuedOutcome], list[OutcomeItem]]]:
    """The outcomes in transactions of at most `most`, each under the gas cap by the
    estimate: 300 breaches would need twice what one transaction may use."""
    part: list[QueuedOutcome] = []
    chosen: list[OutcomeItem] = []
    gas = _GAS_BASE
    for queued_outcome, item in zip(queued, items, strict=True):
        cost = _item_gas(item)
        if part and (len(part) == most or gas + cost > _GAS_CAP):
            yield part, chosen
            part, chosen, gas = [], [], _GAS_BASE
        part.append(queued_outcome)
        chosen.append(item)
        gas += cost
    if part:
        yield part, chosen


def _gas_for(part: Sequence[QueuedOutcome], items: Sequence[OutcomeItem]) -> int | None:
    """Gas for a batch of fresh outcomes without asking the node, which would execute the
    whole batch once more; None (ask the node) for a resend, or beyond the cap."""
    if any(q.tx_hash is not None for q in part):
        return None
    gas = _GAS_BASE + sum(_item_gas(i) for i in items)
    return gas if gas <= _GAS_CAP else None


def _facts(signed_report: dict[str, Any], matter: Matter) -> str:
    report = signed_report["report"]
    specs = {spec.key: spec for spec in matter.claims}
    failed = [c for c in report["comparisons"] if c.get("verdict") == "disagree"]
    parts = [f"{specs[c['key']].description}：{c['detail']}" for c in failed if c["key"] in specs]
    if not parts:
        return f"承诺内容经核查不实（{report.get('note') or report['outcome']}）"
    return "承诺内容与核查数据不符：" + "；".join(parts)
