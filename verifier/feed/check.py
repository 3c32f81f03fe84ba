"""`feed check`: rebuild the feed's chain facts from the contract's logs and compare with it.

The logs are fetched from the node (eth_getLogs), not from the store's event index, so a
store altered anywhere (the index, the records, their columns) is caught. Each served
record (up to the published head) must: continue the sequence without gap or repeat, match
the facts rebuilt from its event field by field, carry the same scope and kind in the
columns the feed filters by, and verify under one of its department's report keys
(`unverified` when none is given, `bad_signature` when signed by another: a key pinned
out of band, or published by the department's signer, `verifier.feed.keys`).
An event of a department about a commitment of another department's matter must not be
served: it is listed as `withheld` (or `wrong_department` when it is served), never as
missing, so that operators see each such conflict. An event given a place above the head
(awaiting its department's signature, or after one that is) is counted as `waiting`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sqlalchemy import select

from ledger import LedgerContract, commitments
from verifier.catalog import Catalog
from verifier.errors import FeedError
from verifier.feed.builder import BlockTimes, facts_of
from verifier.feed.records import ChainFacts, FeedRecord, department_codes, verify_record
from verifier.feed.store import FeedStore
from verifier.records import publication_conflict

LOG_BLOCKS = 5_000  # blocks per eth_getLogs request

ProblemKind = Literal[
    "gap",
    "altered",
    "bad_signature",
    "unverified",
    "not_on_chain",
    "missing",
    "out_of_order",
    "unreadable",
    "withheld",
    "wrong_department",
]


@dataclass(frozen=True)
class CheckProblem:
    """One disagreement between the feed and the chain."""

    kind: ProblemKind
    sequence: int | None
    record_id: str | None
    detail: str


@dataclass
class CheckReport:
    """What `feed check` found."""

    served: int = 0
    on_chain: int = 0
    waiting: int = 0  # events given a place above the published head: not served yet
    problems: list[CheckProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the feed and the chain agree."""
        return not self.problems

    def to_json_obj(self) -> dict[str, Any]:
        """The report as plain JSON."""
        return {
            "ok": self.ok,
            "served": self.served,
            "on_chain": self.on_chain,
            "waiting": self.waiting,
            "problems": [asdict(p) for p in self.problems],
        }


def chain_feed(ledger: LedgerContract, catalog: Catalog, up_to_block: int) -> Iterator[ChainFacts]:
    """The chain facts of every OutcomeRecorded event up to `up_to_block`, in chain order."""
    departments = department_codes(catalog.departments())
    times = BlockTimes(ledger)
    start = 0
    while start <= up_to_block:
        end = min(up_to_block, start + LOG_BLOCKS - 1)
        for entry in ledger.events("OutcomeRecorded", start, end):
            yield facts_of(
                ledger,
                departments,
                times,
                int(entry["blockNumber"]),
                bytes(entry["transactionHash"]),
                int(entry["logIndex"]),
                dict(entry["args"]),
            )
        start = end + 1


def check_feed(
    feed: FeedStore,
    ledger: LedgerContract,
    catalog: Catalog,
    public_key: Callable[[str], str | Collection[str] | None],
    *,
    confirmations: int = 0,
) -> CheckReport:
    """Compare the served feed with the feed rebuilt from the chain's logs; `public_key`
    gives a department's public report key, or its keys (each one published for it: a
    record signed by any other fails)."""
    report = CheckReport()
    safe = ledger.chain.block_number() - confirmations
    rebuilt = {facts.id: facts for facts in chain_feed(ledger, catalog, safe)}
    report.on_chain = len(rebuilt)
    conflicts = _conflicts(feed, catalog, rebuilt)
    order = {facts_id: n for n, facts_id in enumerate(rebuilt)}
    served: set[str] = set()
    last_position = -1
    for expected_seq, row in enumerate(feed.stored_rows(), start=1):
        report.served += 1
        problems = report.problems
        if row.seq != expected_seq:
            problems.append(CheckProblem("gap", row.seq, row.record_id, f"expected {expected_seq}"))
        try:
            record = FeedRecord.from_json_obj(json.loads(row.body))
        except (FeedError, ValueError) as exc:
            problems.append(CheckProblem("unreadable", row.seq, row.record_id, str(exc)))
            continue
        served.add(record.id)
        facts = rebuilt.get(record.id)
        if facts is None:
            problems.append(
                CheckProblem(
                    "not_on_chain", row.seq, record.id, "no such event on chain (reorged away?)"
                )
            )
            continue
        if record.id in conflicts:
            problems.append(
                CheckProblem("wrong_department", row.seq, record.id, conflicts[record.id])
            )
        changed = _differences(record, facts, row.seq, row.record_id, row.scope, row.kind)
        if changed:
            problems.append(CheckProblem("altered", row.seq, record.id, ", ".join(changed)))
        expected = _keys(public_key(facts.department_code))
        if not expected:
            # A record carries its signer's key: without the department's own, anyone's
            # re-signed record would verify.
            problems.append(
                CheckProblem(
                    "unverified",
                    row.seq,
                    record.id,
                    f"no key of {facts.department_code} to check the signature against",
                )
            )
        else:
            signer = None if record.signature is None else record.signature.public_key
            try:
                # One of the department's keys (a rotated one's records keep the old key).
                verify_record(record, signer if signer in expected else expected[0])
            except FeedError as exc:
                problems.append(CheckProblem("bad_signature", row.seq, record.id, str(exc)))
        position = order[record.id]
        if position < last_position:
            problems.append(
                CheckProblem("out_of_order", row.seq, record.id, "served after a later event")
            )
        last_position = max(last_position, position)
    reach = feed.head_block()
    unpublished = feed.unpublished_events()
    for facts_id, facts in rebuilt.items():
        place = (facts.evidence.transaction, facts.evidence.log_index)
        if facts_id in conflicts and facts_id not in served:
            report.problems.append(CheckProblem("withheld", None, facts_id, conflicts[facts_id]))
        elif facts_id not in served and place in unpublished:
            report.waiting += 1  # sequenced, the head not past it yet: not missing
        elif facts_id not in served and facts.evidence.block <= reach:
            report.problems.append(
                CheckProblem(
                    "missing", None, facts_id, f"event in block {facts.evidence.block} not served"
                )
            )
    return report


def _keys(given: str | Collection[str] | None) -> list[str]:
    if given is None:
        return []
    return [given] if isinstance(given, str) else list(given)


def _conflicts(feed: FeedStore, catalog: Catalog, rebuilt: dict[str, ChainFacts]) -> dict[str, str]:
    """The events that must not be served (`publication_conflict`), by record id: why."""
    wanted = {bytes.fromhex(f.evidence.commitment_hash[2:]) for f in rebuilt.values()}
    held: dict[bytes, tuple[str, str]] = {}
    listed = list(wanted)
    with feed.store.engine.connect() as connection:
        for start in range(0, len(listed), 500):
            rows = connection.execute(
                select(
                    commitments.c.hash, commitments.c.matter_code, commitments.c.department
                ).where(commitments.c.hash.in_(listed[start : start + 500]))
            ).all()
            held.update({bytes(r.hash): (r.matter_code, r.department) for r in rows})
    found = {}
    for facts_id, facts in rebuilt.items():
        stored = held.get(bytes.fromhex(facts.evidence.commitment_hash[2:]))
        if stored is None:
            continue
        conflict = publication_conflict(catalog, facts.department_code, *stored)
        if conflict is not None:
            found[facts_id] = f"{facts.evidence.commitment_hash}: {conflict}"
    return found


def _differences(
    record: FeedRecord, facts: ChainFacts, seq: int, row_id: str, scope: str, kind: str
) -> list[str]:
    changed = [
        name for name, value in asdict(facts).items() if asdict(record.facts).get(name) != value
    ]
    if record.sequence != seq:
        changed.append("sequence")
    if row_id != record.id:
        changed.append("record_id column")
    if scope != facts.publication_scope:
        changed.append("scope column")
    if kind != facts.kind:
        changed.append("kind column")
    return changed
