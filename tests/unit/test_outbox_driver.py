"""The outcome outbox and the checking reads straight to the driver write and read exactly
what the SQLAlchemy statements they replace wrote and read, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from ledger import (
    Hash32,
    NewCommitment,
    OutcomeEntry,
    OutcomeOutbox,
    Status,
    Store,
    batches,
    build_tree,
    commitments,
    keccak256,
)
from ledger.store import _split_proof
from ledger.store_driver import IN_LIMIT
from ledger.tables import outcome_outbox

HRSS = "BJ-HRSS"
TX = keccak256(b"a transaction")
BLOCK = keccak256(b"a block")


@dataclass(frozen=True)
class Note:
    body: dict[str, Any]
    evidence: Hash32

    def to_json_obj(self) -> dict[str, Any]:
        return {"report": self.body}


@dataclass(frozen=True)
class Signed(Note):
    stored_json: str  # the text a signed report brings along


def _read(obj: dict[str, Any], evidence: Hash32) -> Note:
    return Note(obj["report"], evidence)


def _entry(n: int, commitment: int | None = None) -> OutcomeEntry[Note]:
    digest = keccak256(f"commitment {n if commitment is None else commitment}".encode())
    evidence = keccak256(f"report {n}".encode())
    status = [Status.KEPT, Status.BREACHED, Status.MISMATCH][n % 3]
    if n % 2:
        text = json.dumps({"report": {"n": n, "text": "履行 ✓"}}, ensure_ascii=False)
        return OutcomeEntry(digest, status, Signed({"n": n}, evidence, text))
    return OutcomeEntry(digest, status, Note({"n": n, "text": "履行 ✓"}, evidence))


def _reference_enqueue(store: Store, items: Sequence[OutcomeEntry[Note]], now: float) -> None:
    """enqueue's insert as it was (SQLAlchemy, insertmanyvalues with RETURNING)."""
    from ledger.outbox import _stored_json

    box = outcome_outbox.c
    with store.engine.execution_options(immediate=True).begin() as connection:
        connection.execute(
            outcome_outbox.insert().returning(box.id, box.commitment_hash, box.evidence),
            [
                {
                    "commitment_hash": item.commitment_hash,
                    "department": HRSS,
                    "status": int(item.status),
                    "evidence": item.evidence,
                    "report": _stored_json(item.report),
                    "created_at": now,
                }
                for item in items
            ],
        ).all()


def _reference_update(store: Store, ids: Sequence[int], **values: Any) -> None:
    """mark_sent / mark_recorded as they were: one ORM UPDATE with an IN list."""
    with store.engine.execution_options(immediate=True).begin() as connection:
        connection.execute(
            update(outcome_outbox).where(outcome_outbox.c.id.in_(list(ids))).values(**values)
        )


def _all_rows(store: Store) -> list[tuple[Any, ...]]:
    with store.engine.connect() as connection:
        rows = connection.execute(select(outcome_outbox).order_by(outcome_outbox.c.id)).all()
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]


def test_the_outbox_writes_the_rows_the_orm_statements_wrote(store: Store) -> None:
    outbox = OutcomeOutbox(store, _read)
    # More rows than one statement holds, two outcomes of one commitment, one item twice.
    first = [_entry(n) for n in range(5_100)] + [_entry(5_100, commitment=5), _entry(3)]
    second = [_entry(n) for n in range(6_000, 6_010)]
    queued = outbox.enqueue(HRSS, first, now=10.5)
    assert [(q.commitment_hash, q.evidence, q.status) for q in queued] == [
        (e.commitment_hash, e.evidence, e.status) for e in first
    ]
    assert queued[3].id < queued[-1].id
    more = outbox.enqueue(HRSS, second, now=11.0)
    sent = [q.id for q in queued[: IN_LIMIT + 7]]
    outbox.mark_sent(sent, TX, now=12.25)
    outbox.mark_recorded(sent[:100], TX, 99, now=13.5)
    outbox.mark_sent([], TX, now=14.0)
    outbox.mark_recorded([more[0].id], BLOCK, 2**40, now=15.0)
    new_rows = _all_rows(store)
    # What the outbox hands back is what it stored.
    by_id = {q.id: q for q in outbox.open(HRSS)}
    assert by_id[more[2].id].report == second[2].report
    assert by_id[more[1].id].report == Note({"n": 6001, "text": "履行 ✓"}, second[1].evidence)

    # The same calls with the previous statements, on the same store emptied.
    with store.engine.begin() as connection:
        connection.execute(outcome_outbox.delete())
    _reference_enqueue(store, first, 10.5)
    _reference_enqueue(store, second, 11.0)
    ids = [row[0] for row in _all_rows(store)]
    shift = ids[0] - new_rows[0][0]
    _reference_update(store, [i + shift for i in sent], tx_hash=TX, sent_at=12.25)
    _reference_update(
        store, [i + shift for i in sent[:100]], tx_hash=TX, block_number=99, recorded_at=13.5
    )
    _reference_update(store, [], tx_hash=TX, sent_at=14.0)
    _reference_update(
        store, [more[0].id + shift], tx_hash=BLOCK, block_number=2**40, recorded_at=15.0
    )
    old_rows = [(row[0] - shift, *row[1:]) for row in _all_rows(store)]
    assert len(new_rows) == len(first) + len(second)
    assert new_rows == old_rows
    assert [type(v) for v in new_rows[0]] == [type(v) for v in old_rows[0]]


def commitment(n: int) -> NewCommitment:
    return NewCommitment(
        hash=keccak256(f"document {n}".encode()),
        code=f"C{n:06d}",
        matter_code=f"M-{n % 3:03d}",
        department=HRSS,
        applicant_fingerprint=keccak256(f"applicant {n}".encode()),
        sealed=b"sealed document " + str(n).encode(),
        wrapped_key=b"wrapped key " + str(n).encode(),
    )


def _reference_refs(store: Store, hashes: Sequence[Hash32]) -> dict[bytes, Any]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(commitments.c.hash, commitments.c.proof, commitments.c.batch_id, batches.c.root)
            .select_from(commitments.join(batches, commitments.c.batch_id == batches.c.id))
            .where(commitments.c.hash.in_(list(hashes)), batches.c.state == "anchored")
        ).all()
    return {
        bytes(r.hash): (
            Hash32(bytes(r.root)),
            None if r.proof is None else _split_proof(r.proof),
            int(r.batch_id),
        )
        for r in rows
    }


def _reference_sealed(store: Store, hashes: Sequence[Hash32]) -> dict[bytes, Any]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(
                commitments.c.hash,
                commitments.c.matter_code,
                commitments.c.sealed,
                commitments.c.wrapped_key,
            ).where(commitments.c.hash.in_(list(hashes)))
        ).all()
    return {
        bytes(r.hash): (
            r.matter_code,
            bytes(r.sealed),
            None if r.wrapped_key is None else bytes(r.wrapped_key),
        )
        for r in rows
    }


def _plain_build(values: list[Hash32]) -> tuple[Hash32, dict[Hash32, list[Hash32]]]:
    root, proofs = build_tree(values)
    return root, dict(proofs)  # no nodes: each proof stored with its commitment


def test_anchor_refs_and_sealed_read_what_the_orm_statements_read(store: Store) -> None:
    items = [commitment(n) for n in range(40)]
    assert all(store.add_commitments(items, now=100.0))
    hashes = [Hash32(item.hash) for item in items]
    with_tree = store.form_batch(HRSS, 10, build_tree)  # proofs in the batch's tree
    plain = store.form_batch(HRSS, 10, _plain_build)  # proofs with each commitment
    pending = store.form_batch(HRSS, 10, build_tree)  # formed, never anchored
    assert with_tree is not None and plain is not None and pending is not None
    store.mark_anchored(with_tree.id, TX, 7, BLOCK)
    store.mark_anchored(plain.id, keccak256(b"another"), 8, BLOCK)
    assert store.erase(hashes[1], now=200.0)  # its wrapped key goes
    unknown = keccak256(b"never committed")
    wanted = [*hashes, unknown, hashes[0]]
    refs = store.anchor_refs_of(wanted)
    assert refs == _reference_refs(store, wanted)
    assert len(refs) == 20
    assert {ref[2] for ref in refs.values()} == {with_tree.id, plain.id}
    assert any(ref[1] is None for ref in refs.values())
    assert any(ref[1] for ref in refs.values())
    sealed = store.sealed_many(wanted)
    assert sealed == _reference_sealed(store, wanted)
    assert len(sealed) == 40 and sealed[bytes(hashes[1])][2] is None
    assert store.anchor_refs_of([]) == {} and store.sealed_many([]) == {}
    many = [keccak256(f"x{n}".encode()) for n in range(IN_LIMIT)] + hashes[:3]
    assert store.sealed_many(many) == _reference_sealed(store, hashes[:3])
    assert store.anchor_refs_of(many) == _reference_refs(store, hashes[:3])
