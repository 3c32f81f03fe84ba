"""The audit lookup's one query (verifier.records.audit_facts) says what the store's own
reads say: the commitment, its anchored batch and proof, its verification state; on
SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert

from ledger import Hash32, Store, batches, commitments
from verifier.records import AnchoredIn, VerifierRecords
from verifier.records.tables import verifications


def _commitment(n: int, batch_id: int | None, state: str) -> dict[str, Any]:
    return {
        "id": n,
        "hash": bytes([n]) * 32,
        "code": f"11010520261127{n:06d}",
        "matter_code": "BJ-HRSS-0001",
        "department": "BJ-HRSS",
        "applicant_fingerprint": b"\x09" * 32,
        "received_at": 1000.5 + n,
        "state": state,
        "batch_id": batch_id,
        "proof": None if batch_id is None else bytes([n + 100]) * 64,
        "sealed": b"\0" * 64,
        "wrapped_key": b"\0" * 40,
    }


def _batch(batch_id: int, state: str) -> dict[str, Any]:
    anchored = state == "anchored"
    return {
        "id": batch_id,
        "root": bytes([batch_id + 50]) * 32,
        "size": 2,
        "department": "BJ-HRSS",
        "state": state,
        "created_at": 1.0,
        "tx_hash": bytes([batch_id + 60]) * 32 if state != "built" else None,
        "attempts": 1,
        "block_number": 40 + batch_id if anchored else None,
        "block_hash": bytes([batch_id + 70]) * 32 if anchored else None,
        "anchored_at": 7.5 if anchored else None,
    }


def test_the_audit_fact_is_what_the_stores_reads_say(store: Store) -> None:
    records = VerifierRecords(store)
    with store.engine.begin() as connection:
        connection.execute(insert(batches), [_batch(1, "anchored"), _batch(2, "sent")])
        connection.execute(
            insert(commitments),
            [
                _commitment(1, 1, "anchored"),
                _commitment(2, 2, "batched"),
                _commitment(3, None, "pending"),
            ],
        )
        connection.execute(
            insert(verifications),
            {
                "commitment_hash": bytes([1]) * 32,
                "matter_code": "BJ-HRSS-0001",
                "department": "BJ-HRSS",
                "due_on": "2026-12-01",
                "deadline_provisional": False,
                "state": "mismatch",
                "overdue_flagged": False,
                "updated_at": 1.0,
            },
        )
    for n in (1, 2, 3):
        digest = Hash32(bytes([n]) * 32)
        fact = records.audit_fact(digest)
        stored, anchoring = store.get(digest), store.anchoring_of(digest)
        verification = records.verification(digest)
        assert fact is not None and stored is not None
        assert (fact.hash, fact.department, fact.matter_code) == (
            digest,
            stored.department,
            stored.matter_code,
        )
        assert (fact.received_at, fact.state) == (stored.received_at, stored.state)
        assert fact.verification_state == (None if verification is None else verification.state)
        if anchoring is None:
            assert fact.anchoring is None  # pending, or in a batch not anchored yet
            continue
        batch, proof = anchoring
        assert fact.anchoring == AnchoredIn(
            batch.root,
            batch.size,
            batch.tx_hash or b"",
            batch.block_number or 0,
            batch.block_hash or b"",
            batch.anchored_at,
            proof,
        )
    first = records.audit_fact(Hash32(bytes([1]) * 32))
    assert first is not None and first.verification_state == "mismatch"
    assert first.anchoring is not None and len(first.anchoring.proof) == 2
    assert records.audit_fact(Hash32(b"\x77" * 32)) is None
