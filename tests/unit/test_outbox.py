"""The outcome outbox hands back what it queued, exactly as a later read finds it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger import Hash32, OutcomeEntry, OutcomeOutbox, Status, Store, keccak256

HRSS = "BJ-HRSS"


@dataclass(frozen=True)
class Note:
    """A report as the outbox sees one: typed, JSON only in the store."""

    body: dict[str, Any]
    label: str
    evidence: Hash32

    def to_json_obj(self) -> dict[str, Any]:
        return {"report": self.body, "signature": {"value": self.label}}


def _read(obj: dict[str, Any], evidence: Hash32) -> Note:
    return Note(obj["report"], obj["signature"]["value"], evidence)


def _entries(count: int, label: str) -> list[OutcomeEntry[Note]]:
    return [
        OutcomeEntry(
            keccak256(f"{label}-{i}".encode()),
            Status.KEPT if i % 3 else Status.MISMATCH,
            Note({"n": i, "note": "核查 ✓"}, label, keccak256(f"{label}-evidence-{i}".encode())),
        )
        for i in range(count)
    ]


def test_enqueue_returns_the_queued_outcomes_in_order(store: Store) -> None:
    outbox = OutcomeOutbox(store, _read)
    outbox.enqueue("BJ-OTHER", _entries(3, "other"))  # ids of another department between
    first = outbox.enqueue(HRSS, _entries(250, "first"))
    second = outbox.enqueue(HRSS, _entries(7, "second"))

    assert outbox.open(HRSS) == first + second
    assert [q.commitment_hash for q in first] == [e.commitment_hash for e in _entries(250, "first")]
    assert len({q.id for q in first + second}) == 257
    assert outbox.enqueue(HRSS, []) == []


def test_a_report_comes_back_as_the_typed_value_it_was_queued_as(store: Store) -> None:
    outbox = OutcomeOutbox(store, _read)
    [entry] = _entries(1, "typed")
    outbox.enqueue(HRSS, [entry])

    # A fresh outbox on the same store: read from the database, not from memory.
    [queued] = OutcomeOutbox(store, _read).open(HRSS)

    assert queued.report == entry.report
    assert queued.evidence == entry.evidence == entry.report.evidence
