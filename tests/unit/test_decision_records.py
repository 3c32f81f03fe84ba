"""Decision records: their canonical form and hash, the store's decisions (on SQLite and
PostgreSQL), the v5 migration of an existing store, and decision leaves in Merkle batches."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785
from sqlalchemy import Connection, inspect, select, text
from support.pipeline import new_intake, signed_documents, submit_all

from ledger import (
    DECISION_SCHEMA,
    DecisionRecord,
    Hash32,
    InvalidDocumentError,
    NewCommitment,
    Store,
    StoreError,
    build_tree,
    commitments,
    current_version,
    keccak256,
    verify_proof,
)
from ledger.tables import sync_state

HRSS = "BJ-HRSS"
MARKET = "BJ-SAMR"
TX = keccak256(b"a transaction")
BLOCK = keccak256(b"a block")
RECEIVED = 1_796_611_485.535274  # a receipt time as the store keeps it, with microseconds
BEIJING = timezone(timedelta(hours=8))
THREAD_DEADLINE = 60.0  # seconds the racing deciders may take


def record(**changes: Any) -> DecisionRecord:
    fields: dict[str, Any] = {
        "commitment": keccak256(b"a commitment"),
        "department": HRSS,
        "matter_code": "M-001",
        "channel": "online",
        "received_at": datetime.fromtimestamp(RECEIVED, UTC),
        "due_at": datetime.fromtimestamp(RECEIVED, UTC) + timedelta(hours=4),
        "decided_at": datetime.fromtimestamp(RECEIVED, UTC) + timedelta(hours=1),
        "decided_by": "tok_3f9a.clerk-01",
        "result": "approved",
    }
    return DecisionRecord(**(fields | changes))


# ---------------------------------------------------------------------- the record


def test_the_hash_is_keccak256_of_the_rfc8785_bytes() -> None:
    decision = record()
    obj = decision.to_json_obj()
    assert obj["schema"] == DECISION_SCHEMA
    assert obj["commitment"] == "0x" + keccak256(b"a commitment").hex()
    assert obj["received_at"] == "2026-12-07T02:44:45.535Z"  # UTC, milliseconds
    assert obj["late"] is False
    assert decision.canonical() == rfc8785.dumps(obj)
    assert decision.hash() == keccak256(rfc8785.dumps(obj))


def test_a_record_reads_back_from_its_json_with_the_same_hash() -> None:
    decision = record(result="refused", channel="counter")
    again = DecisionRecord.from_json_obj(json.loads(decision.canonical()))
    assert again == decision
    assert again.hash() == decision.hash()


def test_times_in_another_zone_are_the_same_instant_and_hash() -> None:
    utc = record()
    beijing = record(
        received_at=utc.received_at.astimezone(BEIJING),
        due_at=utc.due_at.astimezone(BEIJING),
        decided_at=utc.decided_at.astimezone(BEIJING),
    )
    assert beijing.hash() == utc.hash()
    assert beijing.decided_at.tzinfo is UTC


def test_late_is_decided_after_due_and_changes_the_hash() -> None:
    on_time = record()
    late = record(decided_at=on_time.due_at + timedelta(milliseconds=1))
    at_due = record(decided_at=on_time.due_at)
    assert not on_time.late and not at_due.late
    assert late.late and late.to_json_obj()["late"] is True
    assert late.lateness == timedelta(milliseconds=1)
    assert late.hash() != on_time.hash()


@pytest.mark.parametrize(
    "changes",
    [
        {"decided_at": datetime(2026, 12, 7, 10, 0)},  # naive
        {"received_at": datetime(2026, 12, 7, 1, 0)},
        {"decided_by": ""},
        {"decided_by": "x" * 65},
        {"decided_by": "张三"},  # a person's name, not an account id
        {"decided_by": "clerk 01"},
        {"department": "bj-hrss"},
        {"department": "BJ-" + "A" * 40},
        {"matter_code": "-M"},
        {"matter_code": "M" * 65},
        {"channel": "post"},
        {"result": "maybe"},
        {"commitment": b"short"},
        {"decided_at": datetime.fromtimestamp(RECEIVED - 60, UTC)},  # before receipt
    ],
)
def test_bad_fields_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidDocumentError):
        record(**changes)


def test_a_decided_by_of_64_account_characters_is_accepted() -> None:
    assert record(decided_by="A1_.:-" + "x" * 58).decided_by.endswith("x")


@pytest.mark.parametrize(
    "change",
    [
        {"late": True},  # contradicts the times
        {"schema": "commitledger.decision/2"},
        {"extra": 1},
        {"decided_at": "2026-12-07T02:24:45Z"},  # no milliseconds
        {"commitment": "0x" + "AB" * 32},  # not lowercase
    ],
)
def test_bad_json_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(InvalidDocumentError):
        DecisionRecord.from_json_obj(record().to_json_obj() | change)


# ---------------------------------------------------------------------- the store


def new_commitment(n: int, department: str = HRSS, channel: str | None = "online") -> NewCommitment:
    return NewCommitment(
        hash=keccak256(f"document {n}".encode()),
        code=f"C{n:06d}",
        matter_code="M-001",
        department=department,
        applicant_fingerprint=keccak256(f"applicant {n}".encode()),
        sealed=b"sealed",
        wrapped_key=b"wrapped",
        channel=channel,
    )


def add(store: Store, *numbers: int, department: str = HRSS) -> list[Hash32]:
    items = [new_commitment(n, department) for n in numbers]
    for item in items:
        assert store.add_commitments([item], now=RECEIVED) == [True]
    return [item.hash for item in items]


def decision_on(store: Store, commitment: Hash32, **changes: Any) -> DecisionRecord:
    stored = store.get(commitment)
    assert stored is not None
    received = datetime.fromtimestamp(stored.received_at, UTC)
    fields: dict[str, Any] = {
        "commitment": commitment,
        "department": stored.department,
        "matter_code": stored.matter_code,
        "channel": stored.channel or "online",
        "received_at": received,
        "due_at": received + timedelta(hours=4),
        "decided_at": received + timedelta(hours=1),
    }
    return record(**(fields | changes))


def test_intake_stores_the_documents_channel(store: Store) -> None:
    documents = signed_documents(6)
    hashes = submit_all(new_intake(store), documents)
    channels = [document.document.channel for document in documents]
    assert set(channels) == {"online", "counter"}  # the sample holds both
    for digest, channel in zip(hashes, channels, strict=True):
        stored = store.get(digest)
        assert stored is not None
        assert (stored.channel, stored.decided_at) == (channel, None)


def test_a_decision_is_stored_once_with_the_commitments_decision_time(store: Store) -> None:
    [digest] = add(store, 1)
    decision = decision_on(store, digest)
    assert store.decision_of(digest) is None
    assert store.record_decision(decision) is True
    stored = store.decision_of(digest)
    assert stored is not None
    assert stored.record == decision
    assert (stored.hash, stored.state, stored.batch_id, stored.proof) == (
        decision.hash(),
        "pending",
        None,
        (),
    )
    commitment = store.get(digest)
    assert commitment is not None
    assert commitment.decided_at == decision.decided_at.timestamp()

    # a second decision, even another one, changes nothing
    other = decision_on(store, digest, result="refused", decided_at=decision.decided_at)
    assert store.record_decision(other) is False
    again = store.decision_of(digest)
    assert again is not None and again.record == decision


def test_an_unknown_or_erased_commitment_is_not_decided(store: Store) -> None:
    with pytest.raises(StoreError, match="no commitment"):
        store.record_decision(record(commitment=keccak256(b"never stored")))
    [digest] = add(store, 1)
    decision = decision_on(store, digest)
    assert store.erase(digest)
    with pytest.raises(StoreError, match="erased"):
        store.record_decision(decision)
    assert store.decision_of(digest) is None


@pytest.mark.parametrize(
    "changes",
    [
        {"department": MARKET},
        {"matter_code": "M-002"},
        {"channel": "counter"},  # the document came online
        {"received_at": datetime.fromtimestamp(RECEIVED + 60, UTC)},  # a later receipt
    ],
)
def test_a_record_that_does_not_describe_the_commitment_is_refused(
    store: Store, changes: dict[str, Any]
) -> None:
    [digest] = add(store, 1)
    decision = decision_on(store, digest, **changes)
    with pytest.raises(StoreError):
        store.record_decision(decision)
    assert store.decision_of(digest) is None


def test_also_runs_in_the_same_transaction(store: Store) -> None:
    first, second = add(store, 1, 2)

    def count(connection: Connection) -> None:
        connection.execute(sync_state.insert().values(name="decided", value=1))

    assert store.record_decision(decision_on(store, first), also=count)
    assert store.cursor("decided") == 1

    def fail(connection: Connection) -> None:
        connection.execute(sync_state.insert().values(name="decided-2", value=1))
        raise RuntimeError("the counter failed")

    with pytest.raises(RuntimeError, match="the counter failed"):
        store.record_decision(decision_on(store, second), also=fail)
    stored = store.get(second)
    assert stored is not None and stored.decided_at is None
    assert store.decision_of(second) is None
    assert store.cursor("decided-2") is None  # the failed decision's count went with it


def test_also_does_not_run_for_a_second_decision(store: Store) -> None:
    [digest] = add(store, 1)
    calls: list[int] = []
    store.record_decision(decision_on(store, digest), also=lambda _c: calls.append(1))
    store.record_decision(decision_on(store, digest), also=lambda _c: calls.append(1))
    assert calls == [1]


def test_concurrent_decisions_on_one_commitment_store_one(store: Store) -> None:
    """Racing deciders (another instance, a double click): one record, one count."""
    [digest] = add(store, 1)
    results: list[bool] = []
    counted: list[int] = []
    lock = threading.Lock()

    def count(_connection: Connection) -> None:
        with lock:
            counted.append(1)

    def decide_once(n: int) -> Callable[[], None]:
        def run() -> None:
            start = datetime.fromtimestamp(RECEIVED, UTC)
            decision = decision_on(store, digest, decided_at=start + timedelta(minutes=n))
            stored = store.record_decision(decision, also=count)
            with lock:
                results.append(stored)

        return run

    threads = [threading.Thread(target=decide_once(n), daemon=True) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREAD_DEADLINE)
        assert not thread.is_alive(), "a decider did not finish in time"
    assert sorted(results) == [False] * 7 + [True]
    assert counted == [1]
    stored = store.decision_of(digest)
    commitment = store.get(digest)
    assert stored is not None and commitment is not None
    assert commitment.decided_at == stored.record.decided_at.timestamp()


def test_undecided_commitments_are_found_through_the_partial_index(store: Store) -> None:
    with store.engine.connect() as connection:
        indexes = {ix["name"]: ix for ix in inspect(connection).get_indexes("commitments")}
    assert indexes["commitments_undecided"]["column_names"] == ["department", "received_at"]


# ---------------------------------------------------------------------- migration 5


def test_a_store_from_before_v5_gets_the_columns_and_the_table(store_url: str) -> None:
    store = Store(store_url)
    [old] = add(store, 1)
    with store._writer.begin() as connection:  # the store as version 4 left it
        connection.execute(text("DROP INDEX commitments_undecided"))
        connection.execute(text("DROP TABLE decisions"))
        connection.execute(text("ALTER TABLE commitments DROP COLUMN channel"))
        connection.execute(text("ALTER TABLE commitments DROP COLUMN decided_at"))
        # (and later steps: each finds its work done and only records itself)
        connection.execute(text("DELETE FROM schema_migrations WHERE version >= 5"))
        assert current_version(connection) == 4
    store.close()

    store = Store(store_url)
    try:
        with store.engine.connect() as connection:
            assert current_version(connection) >= 5
            columns = {c["name"] for c in inspect(connection).get_columns("commitments")}
            assert {"channel", "decided_at"} <= columns
            assert "decisions" in inspect(connection).get_table_names()
            names = {ix["name"] for ix in inspect(connection).get_indexes("commitments")}
            assert "commitments_undecided" in names
            row = connection.execute(
                select(commitments.c.channel, commitments.c.decided_at).where(
                    commitments.c.hash == old
                )
            ).one()
        assert tuple(row) == (None, None)  # old rows keep no channel
        stored = store.get(old)
        assert stored is not None and stored.channel is None
        # an old commitment without a channel is decided with the channel the caller gives
        assert store.record_decision(decision_on(store, old, channel="counter"))
        [new] = add(store, 2)
        stored = store.get(new)
        assert stored is not None and stored.channel == "online"
    finally:
        store.close()


# ---------------------------------------------------------------------- decision leaves


def decide(store: Store, *hashes: Hash32, hours: float = 1.0) -> list[Hash32]:
    """Decide each commitment (an hour apart, so taken in this order); the record hashes."""
    records = []
    for n, digest in enumerate(hashes):
        decision = decision_on(
            store,
            digest,
            decided_at=datetime.fromtimestamp(RECEIVED, UTC) + timedelta(hours=hours + n),
        )
        assert store.record_decision(decision)
        records.append(decision.hash())
    return records


def proven(store: Store, commitment: Hash32) -> tuple[int, bool]:
    found = store.decision_anchoring(commitment)
    assert found is not None
    batch, proof = found
    stored = store.decision_of(commitment)
    assert stored is not None
    return batch.id, verify_proof(batch.root, stored.hash, proof)


def test_a_batch_takes_commitments_first_then_decisions(store: Store) -> None:
    hashes = add(store, 1, 2, 3)
    records = decide(store, hashes[0], hashes[1])
    assert store.pending_by_department() == [(HRSS, 5, RECEIVED)]
    assert store.pending_decisions() == 2

    batch = store.form_batch(HRSS, 4, build_tree)
    assert batch is not None and batch.size == 4
    assert store.batch_members(batch.id) == [*hashes, records[0]]
    assert proven(store, hashes[0]) == (batch.id, True)
    assert store.decision_anchoring(hashes[1]) is None  # no room: the next batch takes it
    taken = store.decision_of(hashes[0])
    assert taken is not None and (taken.state, taken.batch_id) == ("batched", batch.id)

    rest = store.form_batch(HRSS, 4, build_tree)
    assert rest is not None and rest.size == 1  # a batch of decisions only
    assert store.batch_members(rest.id) == [records[1]]
    assert proven(store, hashes[1]) == (rest.id, True)
    assert store.pending_by_department() == []
    assert store.form_batch(HRSS, 4, build_tree) is None


def test_a_full_batch_of_commitments_leaves_the_decisions_pending(store: Store) -> None:
    hashes = add(store, 1, 2, 3)
    decide(store, hashes[0])
    batch = store.form_batch(HRSS, 3, build_tree)
    assert batch is not None and store.batch_members(batch.id) == hashes
    assert store.pending_decisions() == 1


def test_a_department_with_only_decisions_pending_has_a_backlog(store: Store) -> None:
    hashes = add(store, 1, 2)
    add(store, 3, department=MARKET)
    first = store.form_batch(HRSS, 10, build_tree)
    assert first is not None
    decide(store, *hashes)
    backlog = {department: count for department, count, _ in store.pending_by_department()}
    assert backlog == {HRSS: 2, MARKET: 1}
    oldest = {d: o for d, _, o in store.pending_by_department()}
    assert oldest[HRSS] == pytest.approx(RECEIVED + 3600, abs=0.001)  # waiting since decided


def test_anchored_unsent_and_re_formed_batches_move_their_decisions(store: Store) -> None:
    hashes = add(store, 1, 2)
    decide(store, *hashes)
    batch = store.form_batch(HRSS, 10, build_tree)
    assert batch is not None and batch.size == 4

    store.mark_anchored(batch.id, TX, 7, BLOCK)
    states = {store.decision_of(h).state for h in hashes}  # type: ignore[union-attr]
    assert states == {"anchored"}
    store.mark_unsent(batch.id)
    states = {store.decision_of(h).state for h in hashes}  # type: ignore[union-attr]
    assert states == {"batched"}
    store.mark_anchored(batch.id, TX, 7, BLOCK)

    members = store.batch_members(batch.id)
    extra = keccak256(b"the re-forming's extra leaf")
    root, proofs = build_tree([*members, extra])
    del proofs[extra]
    store.reform_batch(batch.id, root, len(members) + 1, proofs)
    for digest in hashes:
        stored = store.decision_of(digest)
        assert stored is not None and stored.state == "batched"
        assert verify_proof(root, stored.hash, stored.proof)
        commitment = store.get(digest)
        assert commitment is not None and commitment.state == "batched"
        assert verify_proof(root, digest, commitment.proof)
    found = store.decision_anchoring(hashes[0])
    assert found is not None and found[0].root == root and found[0].state == "built"


def test_the_record_kept_is_the_canonical_json(store: Store) -> None:
    [digest] = add(store, 1)
    decision = decision_on(
        store, digest, decided_at=datetime.fromtimestamp(RECEIVED, UTC) + timedelta(hours=5)
    )
    store.record_decision(decision)
    with store.engine.connect() as connection:
        row = connection.execute(text("SELECT record, late, record_hash FROM decisions")).one()
    assert row.record.encode() == decision.canonical()
    assert bool(row.late) is True
    assert bytes(row.record_hash) == keccak256(row.record.encode())
    assert dataclasses.replace(decision).hash() == decision.hash()
