"""The outcome outbox hands back what it queued, exactly as a later read finds it."""

from __future__ import annotations

from ledger import Status, keccak256
from ledger.outbox import OutcomeOutbox
from ledger.store import Store
from ledger.types import Hash32

HRSS = "BJ-HRSS"


def _entries(count: int, label: str) -> list[tuple[Hash32, Status, Hash32, dict[str, object]]]:
    return [
        (
            keccak256(f"{label}-{i}".encode()),
            Status.KEPT if i % 3 else Status.MISMATCH,
            keccak256(f"{label}-evidence-{i}".encode()),
            {"report": {"n": i, "note": "核查 ✓"}, "signature": {"value": label}},
        )
        for i in range(count)
    ]


def test_enqueue_returns_the_queued_outcomes_in_order(store: Store) -> None:
    outbox = OutcomeOutbox(store)
    outbox.enqueue("BJ-OTHER", _entries(3, "other"))  # ids of another department between
    first = outbox.enqueue(HRSS, _entries(250, "first"))
    second = outbox.enqueue(HRSS, _entries(7, "second"))

    assert outbox.open(HRSS) == first + second
    assert [q.commitment_hash for q in first] == [e[0] for e in _entries(250, "first")]
    assert len({q.id for q in first + second}) == 257
    assert outbox.enqueue(HRSS, []) == []
