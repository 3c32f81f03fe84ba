"""Sending outcomes: the outbox's outcomes in recordOutcomes transactions, and what is mined.

Outcomes go out in transactions sized by count and by gas, all sent before any is awaited;
mined ones move their verifications on, issue the notices of proposed breaches (queued for
delivery with them) and publish the breaches decided after the defence. Outcomes the contract
would refuse now are abandoned first: one would revert the whole transaction. An outcome the
contract refuses when sent (its estimate or its mined transaction reverts) is set aside on
its own, with the contract's reason in words, and the others go out without it: a refusal
never blocks the outbox. After a crash, what the chain recorded is read from its
OutcomeRecorded events, and a transaction still pending is awaited, not sent again.

About 430 lines: sending, awaiting, setting aside and recovering are one protocol over the
outbox; apart, the order in which a crash is recovered would be spread over modules.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date
from typing import Any

from eth_account.signers.local import LocalAccount

from ledger import (
    Applicant,
    ChainError,
    ContractRevertError,
    Hash32,
    Intake,
    LedgerContract,
    OutcomeItem,
    OutcomeOutbox,
    QueuedOutcome,
    SigningKey,
    Status,
    Store,
    department_id,
    hex32,
)
from verifier.breaches import BreachEvidence, make_breach_record, mask_person_name
from verifier.calendar import WorkingDays
from verifier.catalog import Catalog, Matter
from verifier.engine.department import Department
from verifier.engine.notices import NoticingOutbox, defence_deadline, is_notice, make_notice
from verifier.engine.refusals import named_by, refusal_reason
from verifier.engine.summary import RunSummary
from verifier.engine.worker import Anchoring
from verifier.errors import VerificationError
from verifier.public_text import breach_facts, document_number
from verifier.records import (
    NoticeRecords,
    RecordedOutcome,
    VerificationState,
    VerifierRecords,
    publication_conflict,
    seal_reasons,
)
from verifier.reports import OutboxReport, SignedReport, outbox_report

log = logging.getLogger("commitledger.verifier")

_STATE_OF_STATUS: dict[Status, VerificationState] = {
    Status.KEPT: "kept",
    Status.MISMATCH: "mismatch",
    Status.NEEDS_MANUAL: "manual",
    Status.BREACHED: "breached",
    Status.PROPOSED: "proposed",
}
# What a successful defence records: the notice is settled, and the verification follows.
_DEFENDED: dict[Status, VerificationState] = {
    Status.KEPT: "kept",
    Status.NEEDS_MANUAL: "manual",
    Status.CORRECTED: "corrected",
}

Queued = QueuedOutcome[OutboxReport]
"""An outcome in the outbox, with its report."""

InFlight = list[tuple[list[Queued], bytes]]
"""Outcome transactions sent and not yet awaited: their outcomes and transaction hash."""

# A first outcome carries its Merkle proof and creates a record (about 45,000 gas), so 300
# stay well under one transaction's 16,777,216 gas cap (EIP-7825).
OUTCOMES_PER_TRANSACTION = 300


def outcome_outbox(store: Store) -> OutcomeOutbox[OutboxReport]:
    """The outcome outbox of `store`, its reports read back as signed reports or notes."""
    return OutcomeOutbox(store, outbox_report)


_NOTICE_ON_CHAIN_ONLY = "a notice is issued only with its Proposed outcome on chain"


class OutcomeSender:
    """Records one department's queued outcomes on chain with its verifier account."""

    def __init__(
        self,
        *,
        department: str,
        store: Store,
        intake: Intake,
        ledger: LedgerContract,
        catalog: Catalog,
        calendar: WorkingDays,
        verifier: LocalAccount,
        records: VerifierRecords,
        outbox: OutcomeOutbox[OutboxReport],
        recent_anchorings: Callable[[], Mapping[bytes, Anchoring]] | None = None,
        recent_applicant: Callable[[Hash32], Applicant | None] | None = None,
        outcomes_per_transaction: int = OUTCOMES_PER_TRANSACTION,
        report_key: SigningKey | None = None,
    ) -> None:
        """`recent_anchorings`: the proofs the caller has read already (the decider's, of
        the commitments it decided), the others are read from the store; `recent_applicant`:
        the applicants of the documents it opened, the others' documents are opened here;
        `report_key`: the department's, which signs the notices of proposed breaches."""
        self.department = department
        self.store = store
        self.intake = intake
        self.ledger = ledger
        self.catalog = catalog
        self.calendar = calendar
        self.verifier = verifier
        self.records = records
        self.outbox = outbox
        self.recent_anchorings = recent_anchorings
        self.recent_applicant = recent_applicant
        self.outcomes_per_transaction = outcomes_per_transaction
        self.report_key = report_key
        self.notices = NoticeRecords(store)

    def notice_for(self, commitment: Hash32, finding: SignedReport) -> SignedReport:
        """The signed notice of a proposed breach of `commitment`, made from its finding."""
        if self.report_key is None:
            raise VerificationError("a notice needs the department's report key")
        try:
            addressee = mask_person_name(self._applicant(commitment).name)
        except VerificationError:
            addressee = None  # no document left to name them: the gateway knows the case
        return make_notice(
            finding,
            self.catalog.matter(finding.matter_code),
            department=self.department,
            key=self.report_key,
            on=finding.as_of,
            calendar=self.calendar,
            addressee=addressee,
        )

    def flush(self, summary: RunSummary) -> int:
        """Record this department's queued outcomes on chain, in as few transactions as allowed."""
        queued = self.outbox.open(self.department)
        fresh = [q for q in queued if not self._settled(q, summary)]
        self.await_mined(self.broadcast(fresh, summary), summary)
        return len(queued)

    def _settled(self, queued: Queued, summary: RunSummary) -> bool:
        """Sent before a crash and mined, or already on chain by another way: record it."""
        if queued.tx_hash is not None:
            receipt = self.ledger.chain.receipt(queued.tx_hash)
            if receipt is not None and receipt["status"] == 1:
                block = int(receipt["blockNumber"])
                self._tally(summary, [queued], queued.tx_hash, block)
                return True
        return False

    def _items(self, queued: Sequence[Queued], states: Mapping[bytes, str]) -> list[OutcomeItem]:
        # The proofs of the commitments just decided were read for the integrity check.
        known = self.recent_anchorings() if self.recent_anchorings is not None else {}
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

    def broadcast(self, queued: Sequence[Queued], summary: RunSummary) -> InFlight:
        """Send the outcomes in transactions of at most `outcomes_per_transaction` and under
        one transaction's gas cap, all of them before waiting for any: they touch different
        commitments, so they do not conflict."""
        todo: list[Queued] = []
        pending: dict[bytes, list[Queued]] = {}
        for item in queued:
            # Only an outcome sent before (its transaction lost, say) can be on chain already.
            if item.tx_hash is not None:
                if self._on_chain_already(item, summary):
                    continue
                if self._still_pending(item.tx_hash):
                    pending.setdefault(item.tx_hash, []).append(item)  # await it, never resend
                    continue
            todo.append(item)
        in_flight: InFlight = [(part, tx_hash) for tx_hash, part in pending.items()]
        todo, states = self._drop_refused(todo, summary)
        every = self._items(todo, states)
        for part, items in _transactions(todo, every, self.outcomes_per_transaction):
            in_flight += self._send(part, items, summary)
        return in_flight

    def _on_chain_already(self, item: Queued, summary: RunSummary) -> bool:
        """Recorded by an earlier transaction of ours: the chain's OutcomeRecorded event says
        which one and where (a resend of it may since have reverted)."""
        department = department_id(self.department)
        if self.ledger.status_of(department, item.commitment_hash).status != item.status:
            return False
        found = self.ledger.outcome_recorded(department, item.commitment_hash, item.status)
        if found is None:
            return False
        tx_hash, block = found
        self._tally(summary, [item], tx_hash, block)
        return True

    def _still_pending(self, tx_hash: bytes) -> bool:
        chain = self.ledger.chain
        return (
            chain.receipt(tx_hash) is None
            and chain.transaction_known(tx_hash)
            and not chain.transaction_stuck(tx_hash)
        )

    def _send(self, part: list[Queued], items: list[OutcomeItem], summary: RunSummary) -> InFlight:
        """One transaction of `part`; an outcome the contract refuses in its estimate is set
        aside with the reason, and the others are sent without it."""
        chain = self.ledger.chain
        try:
            tx = chain.prepare(
                self.verifier,
                self.ledger.outcomes_builder(items),
                abi=self.ledger.abi,
                gas=_gas_for(part, items),
            )
        except ContractRevertError as refusal:
            kept = self._set_aside(part, items, refusal, summary)
            if kept is None:
                raise
            return self._send(*kept, summary) if kept[0] else []
        ids = [q.id for q in part]
        tx_hash = chain.send_recorded(
            self.verifier,
            tx,
            abi=self.ledger.abi,
            record=lambda sent: self.outbox.mark_sent(ids, sent),  # before the broadcast
        )
        return [(part, tx_hash)]

    def _set_aside(
        self,
        part: list[Queued],
        items: list[OutcomeItem],
        refusal: ContractRevertError,
        summary: RunSummary,
    ) -> tuple[list[Queued], list[OutcomeItem]] | None:
        """Abandon the outcomes of `part` the contract refuses, each with its reason in
        words; the others, or None when the refusal is not any one outcome's (a role)."""
        refused = named_by(refusal, items)
        if not refused:
            address = self.verifier.address
            asked = {i: self.ledger.outcomes_refusal(address, [it]) for i, it in enumerate(items)}
            refused = {i: r for i, r in asked.items() if r is not None}
        if not refused:
            return None
        by_reason: dict[str, list[int]] = {}
        for i, error in refused.items():
            by_reason.setdefault(refusal_reason(error), []).append(part[i].id)
        for reason, ids in by_reason.items():
            self.outbox.abandon(ids, reason)
            summary.abandoned += len(ids)
            log.warning("set aside %d outcome(s) the contract refuses: %s", len(ids), reason)
        kept = [i for i in range(len(part)) if i not in refused]
        return [part[i] for i in kept], [items[i] for i in kept]

    def await_mined(self, in_flight: InFlight, summary: RunSummary) -> None:
        """Wait for sent outcome transactions and record what they recorded. A transaction
        that reverted has the outcomes the contract refuses now set aside (with the reason)
        and the others sent again; ChainError when the contract refuses none of them."""
        chain = self.ledger.chain
        reverted = []
        again: list[Queued] = []
        for part, tx_hash in in_flight:
            mined = chain.wait_mined(tx_hash)
            summary.transactions += 1
            summary.gas_used += mined.gas_used
            if mined.status != 1:
                # Mined but reverted (the chain changed after the estimate): nothing recorded.
                rest = self._refused_after_revert(part, summary)
                if rest is None:
                    reverted.append(hex32(Hash32(tx_hash)))
                else:
                    again += rest
                continue
            summary.recorded += len(part)
            self._tally(summary, part, tx_hash, mined.block_number)
        if reverted:
            raise ChainError(f"outcome transactions failed on chain: {', '.join(reverted)}")
        if again:
            self.await_mined(self.broadcast(again, summary), summary)

    def _refused_after_revert(self, part: list[Queued], summary: RunSummary) -> list[Queued] | None:
        """The outcomes of a reverted transaction the contract does not refuse now (sent again),
        the refused ones set aside; None when it refuses none of them."""
        states = self.records.states_of([q.commitment_hash for q in part])
        items = self._items(part, states)
        refusal = self.ledger.outcomes_refusal(self.verifier.address, items)
        if refusal is None:
            return None
        kept = self._set_aside(part, items, refusal, summary)
        return None if kept is None else kept[0]

    def _drop_refused(
        self, queued: list[Queued], summary: RunSummary
    ) -> tuple[list[Queued], dict[bytes, str]]:
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
                self.ledger.status_of(department_id(self.department), item.commitment_hash).status,
                item.status,
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

    def _tally(
        self, summary: RunSummary, queued: Sequence[Queued], tx_hash: bytes, block: int
    ) -> None:
        """Record what is on chain, and count the breaches published and those proposed."""
        summary.breaches += self._recorded(queued, tx_hash, block)
        summary.proposed += [
            hex32(q.commitment_hash) for q in queued if q.status == Status.PROPOSED
        ]

    def _recorded(self, queued: Sequence[Queued], tx_hash: bytes, block: int) -> list[str]:
        """Outcomes are on chain: move their verifications on; publish breaches."""
        # Verifications and breaches first, the outbox last: after a crash in between, the
        # outbox entry is found mined and recorded again, and every step here is idempotent.
        entries, breached, proposed = [], [], []
        before = self._proposed_among(queued)
        for item in queued:
            state = _STATE_OF_STATUS.get(item.status)
            if item.commitment_hash in before:
                state = _DEFENDED.get(item.status, state)  # a defence that succeeded
            if state is None:
                continue  # expiry, correction: the caller updates the breach record
            report = item.report
            if not isinstance(report, SignedReport):
                raise VerificationError(f"outcome {item.id} has no signed report")
            as_of = report.as_of
            matter = self.catalog.matter(report.matter_code)
            rectify_by = None
            if state == "mismatch":
                rectify_by = self.calendar.add(as_of, matter.rectification_window_days).day
            entries.append(
                RecordedOutcome(
                    item.commitment_hash,
                    state,
                    int(item.status),
                    item.evidence,
                    None,  # the outbox keeps the report: the verification refers to it
                    tx_hash,
                    block,
                    rectify_by,
                )
            )
            if item.status == Status.PROPOSED:
                if not is_notice(report):
                    raise VerificationError(_NOTICE_ON_CHAIN_ONLY)
                proposed.append((item, report, matter, as_of))
            if item.status == Status.BREACHED and self._publishable(item, report.matter_code):
                breached.append((item, report, matter, as_of))
        self.records.record_outcomes(entries)
        for item, notice, matter, as_of in proposed:
            self.notices.issue(
                item.commitment_hash,
                self.department,
                notice.to_json_obj(),
                item.evidence,
                as_of,
                matter.defence_working_days,
                defence_deadline(self.calendar, as_of, matter),
            )
        self._settle_notices([q for q in queued if q.commitment_hash in before])
        published = [
            self._publish_breach(item, report, matter, tx_hash, block, as_of)
            for item, report, matter, as_of in breached
        ]
        self.outbox.mark_recorded([q.id for q in queued], tx_hash, block)
        return published

    def _proposed_among(self, queued: Sequence[Queued]) -> set[bytes]:
        """The commitments of `queued` whose verification is a proposed breach now: their
        outcome is the decision after the defence."""
        deciding = [q.commitment_hash for q in queued if q.status != Status.PROPOSED]
        if not deciding:
            return set()
        states = self.records.states_of(deciding)
        return {c for c, state in states.items() if state == "proposed"}

    def _settle_notices(self, decided: Sequence[Queued]) -> None:
        """The notices of proposed breaches now decided on chain: published, or defended;
        the officer's reasons (the report's note) sealed beside them."""
        for item in decided:
            report = item.report
            if not isinstance(report, SignedReport):
                continue
            notice = self.notices.open_for(item.commitment_hash)
            if notice is None:
                continue  # settled before a crash
            published = item.status == Status.BREACHED
            self.notices.settle(
                item.commitment_hash,
                "published" if published else "defended",
                _STATE_OF_STATUS.get(item.status) or _DEFENDED.get(item.status, "corrected"),
                report.as_of,
                str(report.report.get("decided_by", "")),
                item.evidence,
                seal_reasons(self.intake.vault, notice, report.note) if report.note else None,
            )

    def _publishable(self, item: Queued, matter_code: str) -> bool:
        """Whether a breach this department recorded may be published: not when the
        commitment's matter is another department's (`publication_conflict`); then it is
        withheld, and `feed check` lists the outcome's event as withheld."""
        stored = self.store.get(item.commitment_hash)
        conflict = publication_conflict(
            self.catalog,
            self.department,
            matter_code if stored is None else stored.matter_code,
            None if stored is None else stored.department,
        )
        if conflict is not None:
            log.warning("breach of %s not published: %s", hex32(item.commitment_hash), conflict)
        return conflict is None

    def _publish_breach(
        self,
        item: Queued,
        report: SignedReport,
        matter: Matter,
        tx_hash: bytes,
        block: int,
        on: date,
    ) -> str:
        applicant = self._applicant(item.commitment_hash)
        record = make_breach_record(
            applicant,
            matter,
            item.commitment_hash,
            facts=breach_facts(report.comparisons(), matter) or "承诺内容经核查不实。",
            decision=f"撤销{matter.name}审批决定，记入失信记录",
            document_number=document_number(self.department, on.year, item.id),
            decision_date=on,
            evidence=BreachEvidence(
                chain_id=self.ledger.chain.chain_id,
                contract=self.ledger.address,
                transaction=hex32(tx_hash),
                block=block,
                commitment_hash=hex32(item.commitment_hash),
            ),
        )
        fingerprint = self.intake.vault.fingerprint(applicant.id_type, applicant.id_number)
        if self.records.breach(record.id) is None:  # published before a crash: keep that one
            self.records.add_breach(record, fingerprint, recorded_by=self.department)
        # Excluded from the commitment route until the breach is repaired or expires.
        self.store.exclude(fingerprint, item.commitment_hash)
        log.info("breach %s published", record.id)
        return record.id

    def _applicant(self, commitment: Hash32) -> Applicant:
        """Who committed: from the decider, which opened the document to check it in this
        run; else from the document (a breach of an overdue mismatch, a person's decision)."""
        known = self.recent_applicant(commitment) if self.recent_applicant is not None else None
        # Only whether it is erased: the sealed row, not the whole commitment with its proof.
        sealed = self.store.sealed(commitment) if known is not None else None
        if known is not None and sealed is not None and sealed[1] is not None:
            return known  # erased since it was checked: opening it says so, as before
        signed = self.intake.open_document(commitment)
        if signed is None:
            raise VerificationError(f"no document for {hex32(commitment)}")
        return signed.document.applicant


# Gas of one recordOutcomes item, measured with forge, with margin: a first outcome creates
# a record (about 40,000 in a batch with a depth-10 proof; about 750 more per proof node);
# a breach also counts and logs (about 47,000 more).
_GAS_BASE, _GAS_ITEM, _GAS_PER_PROOF_NODE, _GAS_BREACH = 60_000, 40_000, 1_000, 55_000
_GAS_CAP = 16_000_000  # under one transaction's 16,777,216 (EIP-7825)


def _item_gas(item: OutcomeItem) -> int:
    breach = _GAS_BREACH if item.outcome == Status.BREACHED else 0
    return _GAS_ITEM + _GAS_PER_PROOF_NODE * len(item.proof) + breach


def _transactions(
    queued: Sequence[Queued], items: Sequence[OutcomeItem], most: int
) -> Iterator[tuple[list[Queued], list[OutcomeItem]]]:
    """The outcomes in transactions of at most `most`, each under the gas cap by the
    estimate: 300 breaches would need twice what one transaction may use."""
    part: list[Queued] = []
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


def _gas_for(part: Sequence[Queued], items: Sequence[OutcomeItem]) -> int | None:
    """Gas for a batch of fresh outcomes without asking the node, which would execute the
    whole batch once more; None (ask the node) for a resend, or beyond the cap."""
    if any(q.tx_hash is not None for q in part):
        return None
    gas = _GAS_BASE + sum(_item_gas(i) for i in items)
    return gas if gas <= _GAS_CAP else None


def department_sender(
    department: Department,
    *,
    store: Store,
    intake: Intake,
    ledger: LedgerContract,
    catalog: Catalog,
    calendar: WorkingDays,
    **options: Any,
) -> OutcomeSender:
    """The outcome sender of `department` (its verifier account, its records and outbox);
    `options` are OutcomeSender's optional hooks and sizes."""
    sender = OutcomeSender(
        department=department.code,
        store=store,
        intake=intake,
        ledger=ledger,
        catalog=catalog,
        calendar=calendar,
        verifier=department.verifier,
        records=VerifierRecords(store),
        outbox=outcome_outbox(store),
        report_key=department.report_key,
        **options,
    )
    # Every Proposed outcome is queued with its notice, whoever queues it.
    sender.outbox = NoticingOutbox(store, sender.notice_for)
    return sender
