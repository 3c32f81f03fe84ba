"""The outbox knows each inserted row by its commitment and evidence, not by the order the
database returns them in: the ids it hands back are the rows' own, repeats included."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger import Hash32, OutcomeEntry, OutcomeOutbox, Status, Store, keccak256

HRSS = "BJ-HRSS"


@dataclass(frozen=True)
class Note:
    body: dict[str, Any]
    evidence: Hash32

    def to_json_obj(self) -> dict[str, Any]:
        return {"report": self.body}


def _read(obj: dict[str, Any], evidence: Hash32) -> Note:
    return Note(obj["report"], evidence)


def _entry(n: int, commitment: int | None = None) -> OutcomeEntry[Note]:
    digest = keccak256(f"commitment {n if commitment is None else commitment}".encode())
    return OutcomeEntry(digest, Status.KEPT, Note({"n": n}, keccak256(f"report {n}".encode())))


def test_each_queued_outcome_carries_its_own_rows_id(store: Store) -> None:
    outbox = OutcomeOutbox(store, _read)
    # Two outcomes of one commitment, and one item queued twice in the same call.
    entries = [_entry(n) for n in range(600)] + [_entry(600, commitment=5), _entry(3)]
    queued = outbox.enqueue(HRSS, entries)
    assert [(q.commitment_hash, q.evidence) for q in queued] == [
        (e.commitment_hash, e.evidence) for e in entries
    ]
    assert len({q.id for q in queued}) == len(entries)
    assert queued[3].id < queued[-1].id  # a repeat takes the later id
    by_id = {q.id: q for q in outbox.open(HRSS)}
    for item in queued:
        row = by_id[item.id]
        assert (row.commitment_hash, row.evidence, row.report) == (
            item.commitment_hash,
            item.evidence,
            item.report,
        )
