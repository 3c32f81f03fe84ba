"""Builds feed records from confirmed OutcomeRecorded events: sequences them in chain order,
signing at once those whose department's report key it holds, and signs a department's
events that a sequencer without its key gave a place (`FeedBuilder.sign`), rebuilt here from
the indexed event and the store: a sequencer is never trusted with a department's content.
Whoever signs publishes the key's public half for the department in the same transaction
(`verifier.feed.keys`).

An event of a department about a commitment of another department's matter (its own record
of the hash on chain) is withheld: never signed or served (`publication_conflict`); it is
logged once, kept in `FeedBuilder.withheld`, and `feed check` lists it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from sqlalchemy import Connection, select, tuple_

from ledger import (
    AdminCall,
    LedgerContract,
    SafeError,
    SigningKey,
    Status,
    Vault,
    contract_events,
    safe_execution_in,
)
from verifier.catalog import Catalog
from verifier.feed.details import DetailsMaker, Sources, Stored, read_sources
from verifier.feed.keys import publish_signing_keys
from verifier.feed.records import (
    AdminApproval,
    ChainFacts,
    FeedRecord,
    ReportKeys,
    chain_facts,
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
from verifier.records import publication_conflict

log = logging.getLogger("commitledger.feed")

REORG_WINDOW = 64  # blocks behind the feed's last that are looked at again for late events
BUILD_LIMIT = 500  # events made into records in one transaction


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
        self.details = DetailsMaker(catalog, vault)
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
        used: dict[str, SigningKey] = {}
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
            used[record.facts.department_code] = key
        self.feed.redact(redacted, keys=used)
        return len(redacted)

    def _entries(self, connection: Connection, events: Sequence[PendingEvent]) -> list[Entry]:
        first = assigned_in(connection) + 1
        sources = read_sources(connection, events)
        entries: list[Entry] = []
        used: dict[str, SigningKey] = {}
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
            used[facts.department_code] = key
            entries.append(self._signed(sequence, facts, event, args, sources, key))
        # Published in the transaction that signs: no record served under an unpublished key.
        signed = [entry for entry in entries if isinstance(entry, FeedRecord)]
        publish_signing_keys(connection, signed, used)
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
        sources = read_sources(connection, events)
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
        publish_signing_keys(connection, records, {department: key})
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

    def _signed(
        self,
        sequence: int,
        facts: ChainFacts,
        event: PendingEvent,
        args: Mapping[str, Any],
        sources: Sources,
        key: SigningKey,
    ) -> FeedRecord:
        commitment = bytes.fromhex(args["commitment"][2:])
        evidence = bytes.fromhex(args["evidence"][2:])
        details = self.details.details(
            facts, commitment, sources.stored.get(commitment), sources.reports.get(evidence)
        )
        if facts.kind == "breach" and event.tx_hash in sources.published_until:
            details = replace(details, valid_until=sources.published_until[event.tx_hash])
        return sign_record(FeedRecord(sequence, facts, details), key)

    def _withheld(self, facts: ChainFacts, stored: Stored | None) -> str | None:
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
