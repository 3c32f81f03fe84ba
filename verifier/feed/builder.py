"""Builds feed records from confirmed OutcomeRecorded events: sequences them in chain order,
signing at once those whose department's report key it holds, and signs a department's
events that a sequencer without its key gave a place (`FeedBuilder.sign`), rebuilt here from
the indexed event and the store: a sequencer is never trusted with a department's content.

An event of a department about a commitment of another department's matter (its own record
of the hash on chain) is withheld: never signed or served (`publication_conflict`); it is
logged once, kept in `FeedBuilder.withheld`, and `feed check` lists it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import partial
from typing import Any

from sqlalchemy import Connection, select, tuple_

from ledger import (
    AdminCall,
    LedgerContract,
    SafeError,
    SignedCommitment,
    SigningKey,
    Status,
    Vault,
    VaultError,
    commitments,
    contract_events,
    outcome_outbox,
    safe_execution_in,
)
from verifier.breaches import add_months, mask_id_number, mask_person_name, publication_period
from verifier.catalog import Catalog, Matter
from verifier.departments import default_departments
from verifier.feed.records import (
    COMMITMENT_TYPES,
    COMMITTER_CATEGORIES,
    AdminApproval,
    ChainFacts,
    Details,
    FeedKind,
    FeedRecord,
    ReportKeys,
    chain_facts,
    committer_category,
    department_codes,
    sign_record,
)
from verifier.feed.store import (
    OUTCOME_EVENT,
    Entry,
    FeedStore,
    Fence,
    PendingEvent,
    Sequenced,
    assigned_in,
    withhold,
)
from verifier.public_text import breach_facts, severity_text
from verifier.records import breach_records, publication_conflict
from verifier.records import verifications_table as verifications
from verifier.rules import Comparison

log = logging.getLogger("commitledger.feed")

REORG_WINDOW = 64  # blocks behind the feed's last that are looked at again for late events
BUILD_LIMIT = 500  # events made into records in one transaction

_SANCTIONS: dict[FeedKind, str] = {
    "mismatch": "责令限期整改（逾期未整改的，按承诺不实处理）",
    "proposed": "拟认定失信：已告知当事人，陈述申辩期内不予公开",
    "repair": "信用修复：移出失信公示，链上记录保留",
    "expiry": "公示期满：移出失信公示，链上记录保留",
    "correction": "异议成立：撤销失信记录",
}

_REASONS: dict[str, str] = {
    "certificate_replacing": "以书面承诺代替提交证明材料",
    "approval_replacing": "以书面承诺代替审批条件的事前核查",
}
_UNFULFILLED_BY_DECISION: dict[FeedKind, str] = {
    "breach": "经核查认定承诺内容不实或逾期未整改。",
}


@dataclass(frozen=True)
class _Stored:
    """What the store holds about one commitment, for its records' details."""

    code: str
    matter_code: str
    department: str  # the department the store took the commitment in for
    sealed: bytes
    wrapped_key: bytes | None
    due_on: str | None
    rectify_by: str | None = None


class BlockTimes:
    """Block timestamps, asked once per block."""

    def __init__(self, ledger: LedgerContract) -> None:
        self._w3 = ledger.chain.w3
        self._seen: dict[int, int] = {}

    def __call__(self, block: int) -> int:
        found = self._seen.get(block)
        if found is None:
            found = int(self._w3.eth.get_block(block)["timestamp"])
            if len(self._seen) > 10_000:
                self._seen.clear()
            self._seen[block] = found
        return found


def facts_of(
    ledger: LedgerContract,
    departments: Mapping[bytes, str],
    times: BlockTimes,
    block: int,
    tx_hash: bytes,
    log_index: int,
    args: Mapping[str, Any],
) -> ChainFacts:
    """The chain facts of one OutcomeRecorded event, as the feed and `feed check` see them."""
    approval = None
    if Status(int(args["to"])) == Status.CORRECTED:
        approval = admin_approval(ledger, tx_hash, args)
    return chain_facts(
        chain_id=ledger.chain.chain_id,
        contract=ledger.address,
        transaction="0x" + tx_hash.hex(),
        block=block,
        log_index=log_index,
        block_timestamp=times(block),
        args=args,
        departments=departments,
        admin_approval=approval,
    )


def admin_approval(
    ledger: LedgerContract, tx_hash: bytes, args: Mapping[str, Any]
) -> AdminApproval | None:
    """Who approved a correction, when the ledger's admin Safe made it (`correctBreach` in a
    Safe execution of the same transaction); None for a department's own correction."""
    try:
        call = AdminCall(
            "correctBreach",
            department=_word(args["department"]),
            commitment=_word(args["commitment"]),
            evidence=_word(args["evidence"]),
        )
    except SafeError:  # a zero hash: correctBreach refuses one, so the Safe made no such call
        return None
    execution = safe_execution_in(ledger.chain, tx_hash, ledger.address, call.data())
    if execution is None:
        return None
    return AdminApproval(
        execution.tx.safe, "0x" + execution.tx.hash().hex(), tuple(execution.approvers)
    )


def _word(value: Any) -> bytes:
    """A bytes32 event argument, as the index (0x-hex) or web3 (bytes) gives it."""
    return bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)


@dataclass(frozen=True)
class _Sources:
    """What the store holds for the records of a run of events, read once for them all."""

    stored: dict[bytes, _Stored]
    reports: dict[bytes, dict[str, Any]]
    published_until: dict[bytes, date]


class FeedBuilder:
    """Turns indexed, confirmed status changes into signed feed records.

    `build` is the sequencer's (one at a time: the `feed` lease): it gives every confirmed
    event its place in chain order; an event whose department's report key is there is
    signed at once, in the same transaction; the others wait in `feed_sequenced` for `sign`
    on an instance holding that key. A record waits for its event to be `confirmations`
    blocks deep. The published head stops at the first place awaiting its signer:
    `blocked_on` names that department. `withheld` maps the record id each event withheld
    (it would be published under the wrong department) would have had to why, and `refused`
    each sequenced place this builder would not sign to why, since this builder started.
    """

    def __init__(
        self,
        feed: FeedStore,
        ledger: LedgerContract,
        catalog: Catalog,
        vault: Vault | None,
        report_keys: ReportKeys,
        *,
        confirmations: int = 0,
        limit: int = BUILD_LIMIT,
    ) -> None:
        self.feed = feed
        self.ledger = ledger
        self.catalog = catalog
        self.vault = vault
        self.report_keys = report_keys
        self.confirmations = confirmations
        self.limit = limit
        self.departments = department_codes(catalog.departments())
        self._names = {m.department: m.department_name for m in catalog.matters}
        self.times = BlockTimes(ledger)
        self.blocked_on: str | None = None
        self.withheld: dict[str, str] = {}
        self.refused: dict[int, str] = {}

    def build(self, fence: Fence | None = None) -> list[Entry]:
        """Sequence every confirmed event not in the feed yet (up to `limit`): the entries
        added, signed records and places awaiting their signers."""
        safe = self.ledger.chain.block_number() - self.confirmations
        if safe < 0:
            return []
        entries = self.feed.append(self._entries, safe, REORG_WINDOW, self.limit, fence=fence)
        self.blocked_on = self.feed.blocked_on()
        return entries

    def sign(self, department: str | None = None, fence: Fence | None = None) -> list[FeedRecord]:
        """Sign the places sequenced for `department` (None: every department waiting whose
        report key this builder holds) with its report key: the records signed."""
        wanted = self.feed.waiting_departments() if department is None else [department]
        signed: list[FeedRecord] = []
        for code in wanted:
            key = self.report_keys(code)
            if key is None:
                continue
            build = partial(self._signed_places, department=code, key=key)
            while True:
                records = self.feed.sign(code, build, self.limit, fence=fence)
                signed += records
                if len(records) < self.limit:
                    break
        self.blocked_on = self.feed.blocked_on()
        return signed

    def redact(self, departments: Collection[str] | None = None) -> int:
        """Re-sign the records (of `departments`, if given) of commitments erased since they
        were served, without the committer's (masked) name, category and code; how many
        were redacted."""
        redacted = []
        for _seq, body in self.feed.erased_with_personal_data(departments=departments):
            record = FeedRecord.from_json_obj(json.loads(body))
            key = self.report_keys(record.facts.department_code)
            if key is None:
                continue  # redacted once the key is there
            details = replace(
                record.details,
                committer_name=None,
                committer_category=None,
                credit_code=None,
                personal_data_erased=True,
            )
            redacted.append(sign_record(replace(record, details=details, signature=None), key))
        self.feed.redact(redacted)
        return len(redacted)

    def _entries(self, connection: Connection, events: Sequence[PendingEvent]) -> list[Entry]:
        first = assigned_in(connection) + 1
        sources = self._sources(connection, events)
        entries: list[Entry] = []
        for event in events:
            args = json.loads(event.args)
            facts = self._facts(event, args)
            commitment = bytes.fromhex(args["commitment"][2:])
            conflict = self._withheld(facts, sources.stored.get(commitment))
            if conflict is not None:
                withhold(connection, event, facts.department_code, commitment, conflict)
                continue
            sequence = first + len(entries)
            key = self.report_keys(facts.department_code)
            if key is None:
                entries.append(
                    Sequenced(
                        sequence,
                        event.tx_hash,
                        event.log_index,
                        event.block_number,
                        facts.department_code,
                    )
                )
                continue
            entries.append(self._signed(sequence, facts, event, args, sources, key))
        return entries

    def _signed_places(
        self,
        connection: Connection,
        places: Sequence[Sequenced],
        *,
        department: str,
        key: SigningKey,
    ) -> list[FeedRecord]:
        """The records of `department`'s sequenced places, each rebuilt from its indexed
        event and the store and signed; a place whose event is not indexed, not
        `department`'s or withheld is refused (left waiting, logged once)."""
        indexed = _indexed(connection, places)
        found = [(place, indexed.get((place.tx_hash, place.log_index))) for place in places]
        events = [event for _place, event in found if event is not None]
        sources = self._sources(connection, events)
        records = []
        for place, event in found:
            if event is None:
                self._refuse(place, "its event is not in the index of confirmed outcomes")
                continue
            args = json.loads(event.args)
            facts = self._facts(event, args)
            if facts.department_code != department or place.department != department:
                self._refuse(place, f"its event is {facts.department_code}'s, not {department}'s")
                continue
            conflict = self._withheld(
                facts, sources.stored.get(bytes.fromhex(args["commitment"][2:]))
            )
            if conflict is not None:
                self._refuse(place, f"its event is withheld: {conflict}")
                continue
            records.append(self._signed(place.sequence, facts, event, args, sources, key))
        return records

    def _refuse(self, place: Sequenced, why: str) -> None:
        if place.sequence not in self.refused:
            self.refused[place.sequence] = why
            log.warning(
                "feed place %d not signed for %s: %s", place.sequence, place.department, why
            )

    def _facts(self, event: PendingEvent, args: Mapping[str, Any]) -> ChainFacts:
        return facts_of(
            self.ledger,
            self.departments,
            self.times,
            event.block_number,
            event.tx_hash,
            event.log_index,
            args,
        )

    def _sources(self, connection: Connection, events: Sequence[PendingEvent]) -> _Sources:
        parsed = [json.loads(event.args) for event in events]
        return _Sources(
            _stored(connection, [bytes.fromhex(args["commitment"][2:]) for args in parsed]),
            _reports(connection, [bytes.fromhex(args["evidence"][2:]) for args in parsed]),
            _publication_ends(connection, [event.tx_hash for event in events]),
        )

    def _signed(
        self,
        sequence: int,
        facts: ChainFacts,
        event: PendingEvent,
        args: Mapping[str, Any],
        sources: _Sources,
        key: SigningKey,
    ) -> FeedRecord:
        commitment = bytes.fromhex(args["commitment"][2:])
        evidence = bytes.fromhex(args["evidence"][2:])
        details = self._details(
            facts, commitment, sources.stored.get(commitment), sources.reports.get(evidence)
        )
        if facts.kind == "breach" and event.tx_hash in sources.published_until:
            details = replace(details, valid_until=sources.published_until[event.tx_hash])
        return sign_record(FeedRecord(sequence, facts, details), key)

    def _withheld(self, facts: ChainFacts, stored: _Stored | None) -> str | None:
        """Why the event is withheld, if it is another department's outcome on a commitment
        of this store (its own record of the hash on chain): never published under its
        department."""
        if stored is None:  # anchored elsewhere: the chain facts are all there is
            return None
        conflict = publication_conflict(
            self.catalog, facts.department_code, stored.matter_code, stored.department
        )
        if conflict is None:
            return None
        event = facts.id
        if event not in self.withheld:
            self.withheld[event] = conflict
            log.warning(
                "feed withholds event %s of %s on %s: %s",
                event,
                facts.department_code,
                facts.evidence.commitment_hash,
                conflict,
            )
        return conflict

    def _details(
        self,
        facts: ChainFacts,
        commitment: bytes,
        stored: _Stored | None,
        report: dict[str, Any] | None,
    ) -> Details:
        determining = self._unit(facts.department_code, "determining")
        if stored is None:  # anchored elsewhere: the chain facts are all there is
            return Details(
                determining_unit=determining["determining_unit"],
                determining_unit_code=determining["determining_unit_code"],
            )
        matter = self._matter(stored.matter_code)
        common: dict[str, Any] = {
            "commitment_code": stored.code,
            "matter_code": stored.matter_code,
            "date_made": _code_date(stored.code),
            # The unit that took the commitment: the store took it in for this department.
            **self._unit(stored.department, "accepting"),
            "valid_until": _valid_until(facts, stored, matter),
            **determining,
            "unfulfilled": _unfulfilled(facts.kind, report, matter),
            "sanction": _sanction(facts.kind, matter),
        }
        if matter is not None:
            common.update(
                matter_name=matter.name,
                commitment_type=COMMITMENT_TYPES[matter.commitment_type],
                reason=f"申请办理{matter.name}，{_REASONS[matter.commitment_type]}",
                content_summary=matter.notice.conditions,
                liability=matter.notice.liability,
            )
        party = self._party(commitment, stored)
        if party is None:
            return Details(**common, personal_data_erased=True)
        return Details(**common, **party)

    def _unit(self, department: str, role: str) -> dict[str, str | None]:
        """`<role>_unit` and `<role>_unit_code` of `department` from the registry (the
        catalog's name, and no code, for a department the registry lacks)."""
        known = default_departments().get(department)
        name = known.name if known is not None else self._names.get(department)
        return {
            f"{role}_unit": name,
            f"{role}_unit_code": None if known is None else known.credit_code,
        }

    def _matter(self, code: str) -> Matter | None:
        try:
            return self.catalog.matter(code)
        except ValueError:
            return None

    def _party(self, commitment: bytes, stored: _Stored) -> dict[str, Any] | None:
        if self.vault is None or stored.wrapped_key is None:
            return None
        try:
            plain = self.vault.open(stored.sealed, stored.wrapped_key, associated=commitment)
        except VaultError:
            log.warning("sealed document of 0x%s does not open", commitment.hex())
            return None
        applicant = SignedCommitment.from_json_obj(json.loads(plain)).document.applicant
        category = COMMITTER_CATEGORIES[committer_category(applicant.kind, applicant.id_number)]
        if applicant.kind == "person":
            return {
                "committer_name": mask_person_name(applicant.name),
                "committer_category": category,
                "credit_code": mask_id_number(applicant.id_type, applicant.id_number),
            }
        return {
            "committer_name": applicant.name,
            "committer_category": category,
            "credit_code": applicant.id_number,
        }


def _indexed(
    connection: Connection, places: Sequence[Sequenced]
) -> dict[tuple[bytes, int], PendingEvent]:
    """The indexed OutcomeRecorded events of `places`, by (transaction, log index)."""
    if not places:
        return {}
    events = contract_events.c
    rows = connection.execute(
        select(events.block_number, events.tx_hash, events.log_index, events.args).where(
            events.name == OUTCOME_EVENT,
            tuple_(events.tx_hash, events.log_index).in_(
                [(place.tx_hash, place.log_index) for place in places]
            ),
        )
    ).all()
    return {
        (bytes(r.tx_hash), int(r.log_index)): PendingEvent(
            int(r.block_number), bytes(r.tx_hash), int(r.log_index), r.args
        )
        for r in rows
    }


def _stored(connection: Connection, hashes: Sequence[bytes]) -> dict[bytes, _Stored]:
    wanted = list(set(hashes))
    found: dict[bytes, _Stored] = {}
    due = dict(
        connection.execute(
            select(verifications.c.commitment_hash, verifications.c.due_on).where(
                verifications.c.commitment_hash.in_(wanted)
            )
        ).all()
    )
    rectify = dict(
        connection.execute(
            select(verifications.c.commitment_hash, verifications.c.rectify_by).where(
                verifications.c.commitment_hash.in_(wanted)
            )
        ).all()
    )
    rows = connection.execute(
        select(
            commitments.c.hash,
            commitments.c.code,
            commitments.c.matter_code,
            commitments.c.department,
            commitments.c.sealed,
            commitments.c.wrapped_key,
        ).where(commitments.c.hash.in_(wanted))
    ).all()
    for row in rows:
        key = bytes(row.hash)
        wrapped = None if row.wrapped_key is None else bytes(row.wrapped_key)
        found[key] = _Stored(
            row.code,
            row.matter_code,
            row.department,
            bytes(row.sealed),
            wrapped,
            due.get(key),
            rectify.get(key),
        )
    return found


def _publication_ends(connection: Connection, tx_hashes: Sequence[bytes]) -> dict[bytes, date]:
    """The publication end of the breach record each transaction recorded (by tx hash)."""
    rows = connection.execute(
        select(breach_records.c.tx_hash, breach_records.c.publication_end).where(
            breach_records.c.tx_hash.in_(list(set(tx_hashes)))
        )
    ).all()
    return {bytes(row.tx_hash): date.fromisoformat(row.publication_end) for row in rows}


def _valid_until(facts: ChainFacts, stored: _Stored, matter: Matter | None) -> date | None:
    """The commitment's standing as the record states it (records.py's docstring): a breach
    until its publication ends (the breach record's end, else the period from the day it
    was determined), a mismatch until the rectification deadline, a record for a person
    until the verification deadline; an ending record the day it ended; kept and a
    proposed breach: none."""
    kind = facts.kind
    if kind == "breach":
        if matter is None:
            return None
        months = publication_period(matter.severity).months_published
        return add_months(facts.determined_on, months)
    if kind == "mismatch":
        return None if stored.rectify_by is None else date.fromisoformat(stored.rectify_by)
    if kind == "needs_manual":
        return None if stored.due_on is None else date.fromisoformat(stored.due_on)
    if kind in ("kept", "proposed"):  # stands / not determined yet
        return None
    return facts.determined_on


def _reports(connection: Connection, evidences: Sequence[bytes]) -> dict[bytes, dict[str, Any]]:
    rows = connection.execute(
        select(outcome_outbox.c.evidence, outcome_outbox.c.report).where(
            outcome_outbox.c.evidence.in_(list(set(evidences)))
        )
    ).all()
    return {bytes(row.evidence): json.loads(row.report) for row in rows}


def _code_date(code: str) -> date | None:
    try:
        return date(int(code[6:10]), int(code[10:12]), int(code[12:14]))
    except ValueError:
        return None


def _unfulfilled(
    kind: FeedKind, signed_report: dict[str, Any] | None, matter: Matter | None
) -> str | None:
    """The claims the department's data contradicted, in Chinese from each comparison's
    claim, operator and values (not the report's English `detail`); a breach decided
    without a comparison (an overdue rectification, a person's decision) says so."""
    report = (signed_report or {}).get("report") or {}
    comparisons = [
        Comparison.from_json_obj(c)
        for c in report.get("comparisons", ())
        if c.get("verdict") == "disagree"
    ]
    return breach_facts(comparisons, matter) or _UNFULFILLED_BY_DECISION.get(kind)


def _sanction(kind: FeedKind, matter: Matter | None) -> str | None:
    if kind == "breach" and matter is not None:
        months = publication_period(matter.severity).months_published
        liability = matter.notice.liability.rstrip("。")
        return f"{liability}（{severity_text(matter.severity, months)}）。"
    return _SANCTIONS.get(kind)
