"""The durable store, on a SQLite file and on a real PostgreSQL server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from ledger import (
    BatchRow,
    Hash32,
    NewCommitment,
    Store,
    StoreError,
    StoreStatus,
    build_tree,
    keccak256,
    verify_proof,
)

HRSS = "BJ-HRSS"
MARKET = "BJ-SAMR"
TX = keccak256(b"a transaction")
BLOCK = keccak256(b"a block")
THREAD_DEADLINE = 60.0  # seconds a concurrency test's threads may take


def commitment(n: int, department: str = HRSS, applicant: int | None = None) -> NewCommitment:
    """A made-up commitment: its hash, an applicant fingerprint, sealed bytes and a key."""
    return NewCommitment(
        hash=keccak256(f"document {n}".encode()),
        code=f"C{n:06d}",
        matter_code="M-001",
        department=department,
        applicant_fingerprint=fingerprint(n if applicant is None else applicant),
        sealed=b"sealed document " + str(n).encode(),
        wrapped_key=b"wrapped key " + str(n).encode(),
    )


def fingerprint(applicant: int) -> bytes:
    return keccak256(f"applicant {applicant}".encode())


def add(store: Store, *numbers: int, department: str = HRSS, now: float = 100.0) -> list[Hash32]:
    """Add commitments one call each (so ids follow the order); return their hashes."""
    items = [commitment(n, department) for n in numbers]
    for item in items:
        assert store.add_commitments([item], now=now) == [True]
    return [item.hash for item in items]


def state_of(store: Store, value: Hash32) -> str:
    stored = store.get(value)
    assert stored is not None
    return stored.state


def event(
    block: int, log_index: int, name: str = "BatchAnchored", subject: bytes | None = None
) -> dict[str, Any]:
    return {
        "block_number": block,
        "block_hash": keccak256(f"block {block}".encode()),
        "tx_hash": keccak256(f"tx {block}".encode()),
        "log_index": log_index,
        "name": name,
        "subject": subject,
        "department": keccak256(HRSS.encode()),
        "args": json.dumps({"block": block, "index": log_index}),
    }


def run_threads(*targets: Callable[[], None]) -> list[BaseException]:
    """Run each target in a thread, bounded by THREAD_DEADLINE; return what they raised."""
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:
                errors.append(exc)

        return run

    threads = [threading.Thread(target=guarded(t), daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREAD_DEADLINE)
        assert not thread.is_alive(), "a store thread did not finish in time"
    return errors


# ---------------------------------------------------------------------- opening


def test_the_store_reports_its_backend(store: Store, store_url: str) -> None:
    assert store.dialect == store_url.split(":", 1)[0].split("+", 1)[0]
    size = store.size_bytes()
    if store.dialect == "sqlite":
        assert size is not None
        assert size > 0
    else:
        assert size is None


def test_a_sqlite_store_creates_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "ledger.db"
    store = Store(f"sqlite:///{path}")
    try:
        assert path.exists()
    finally:
        store.close()


def modes(database: Path) -> dict[str, int]:
    """The permission bits of the store's files that exist, by suffix."""
    found = {}
    for suffix in ("", "-wal", "-shm"):
        path = database.with_name(database.name + suffix)
        if path.exists():
            found[suffix] = path.stat().st_mode & 0o777
    return found


def test_a_new_sqlite_store_and_its_directory_are_the_owners_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "ledger.db"
    store = Store(f"sqlite:///{path}")
    try:
        assert store.add_commitments([commitment(1)]) == [True]  # the WAL is written
        assert path.parent.stat().st_mode & 0o777 == 0o700
        assert modes(path) == {"": 0o600, "-wal": 0o600, "-shm": 0o600}
    finally:
        store.close()


def test_an_older_world_readable_store_is_narrowed_on_open(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    store = Store(f"sqlite:///{path}")
    store.add_commitments([commitment(1)])
    for file in path.parent.glob("ledger.db*"):
        file.chmod(0o644)
    reopened = Store(f"sqlite:///{path}")
    try:
        assert set(modes(path).values()) == {0o600}
        assert reopened.get(commitment(1).hash) is not None
    finally:
        reopened.close()
        store.close()


def test_an_unreachable_database_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot open the store"):
        Store("postgresql+psycopg://nobody@127.0.0.1:1/nothing?connect_timeout=2")


def test_commitments_survive_closing_and_reopening(store_url: str) -> None:
    first = Store(store_url)
    try:
        [value] = add(first, 1)
    finally:
        first.close()
    second = Store(store_url)
    try:
        assert second.get(value) is not None
        assert second.sealed(value) == (commitment(1).sealed, commitment(1).wrapped_key)
    finally:
        second.close()


# ---------------------------------------------------------------------- intake


def test_add_commitments_stores_new_ones(store: Store) -> None:
    items = [commitment(1), commitment(2, MARKET)]
    assert store.add_commitments(items, now=123.5) == [True, True]
    stored = store.get(items[1].hash)
    assert stored is not None
    assert stored.hash == items[1].hash
    assert stored.code == "C000002"
    assert stored.matter_code == "M-001"
    assert stored.department == MARKET
    assert stored.received_at == 123.5
    assert stored.state == "pending"
    assert stored.batch_id is None
    assert stored.proof == ()
    assert stored.erased is False
    assert store.status(now=200.0).pending == 2


def test_add_commitments_is_idempotent(store: Store) -> None:
    assert store.add_commitments([commitment(1)], now=100.0) == [True]
    again = NewCommitment(**{**commitment(1).__dict__, "department": MARKET, "sealed": b"other"})
    assert store.add_commitments([again], now=200.0) == [False]
    stored = store.get(commitment(1).hash)
    assert stored is not None
    assert (stored.department, stored.received_at) == (HRSS, 100.0)
    assert store.sealed(commitment(1).hash) == (commitment(1).sealed, commitment(1).wrapped_key)
    assert store.status().pending == 1


def test_duplicates_inside_one_call_are_stored_once(store: Store) -> None:
    items = [commitment(1), commitment(2), commitment(1), commitment(3), commitment(2)]
    assert store.add_commitments(items) == [True, True, False, True, False]
    assert store.add_commitments([commitment(3), commitment(4)]) == [False, True]
    assert store.status().pending == 4


def test_two_stores_adding_the_same_commitments_store_each_once(
    store_url: str, store: Store
) -> None:
    other = Store(store_url)
    new: dict[bytes, int] = {}
    lock = threading.Lock()

    def submit(each: Store) -> Callable[[], None]:
        def run() -> None:
            for n in range(0, 120, 2):
                items = [commitment(n), commitment(n + 1)]
                flags = each.add_commitments(items)
                with lock:
                    for item, flag in zip(items, flags, strict=True):
                        new[item.hash] = new.get(item.hash, 0) + flag

        return run

    try:
        assert run_threads(submit(store), submit(other)) == []
    finally:
        other.close()
    assert len(new) == 120
    assert set(new.values()) == {1}  # exactly one of the two was told it is new
    assert store.status().pending == 120


def test_add_nothing(store: Store) -> None:
    assert store.add_commitments([]) == []
    assert store.status().pending == 0


def test_unknown_commitments(store: Store) -> None:
    unknown = keccak256(b"never stored")
    assert store.get(unknown) is None
    assert store.sealed(unknown) is None
    assert store.anchoring_of(unknown) is None


def test_sealed_gives_the_document_and_its_wrapped_key(store: Store) -> None:
    store.add_commitments([commitment(1), commitment(2)])
    assert store.sealed(commitment(2).hash) == (
        b"sealed document 2",
        b"wrapped key 2",
    )


def test_erase_destroys_the_key_and_the_ciphertext(store: Store) -> None:
    store.add_commitments([commitment(1), commitment(2)])
    assert store.erase(commitment(1).hash, now=150.0) is True
    assert store.sealed(commitment(1).hash) == (b"", None)
    erased = store.get(commitment(1).hash)
    assert erased is not None
    assert erased.erased is True
    assert erased.state == "pending"  # the public commitment is still anchored as usual
    kept = store.get(commitment(2).hash)
    assert kept is not None
    assert kept.erased is False
    assert store.sealed(commitment(2).hash) == (b"sealed document 2", b"wrapped key 2")
    assert store.erase(keccak256(b"never stored")) is False


# ---------------------------------------------------------------------- exclusions


def test_exclusions(store: Store) -> None:
    one, two, three = fingerprint(1), fingerprint(2), fingerprint(3)
    assert store.is_excluded(one) is False
    assert store.excluded_among([one, two]) == set()
    store.exclude(one, commitment(1).hash, now=100.0)
    store.exclude(one, commitment(9).hash, now=200.0)  # already excluded: no error
    store.exclude(three, commitment(3).hash)
    assert store.is_excluded(one) is True
    assert store.is_excluded(two) is False
    assert store.excluded_among([one, two, three, one]) == {one, three}
    assert store.excluded_among([]) == set()
    store.lift_exclusion(one)
    store.lift_exclusion(two)  # not excluded: nothing happens
    assert store.is_excluded(one) is False
    assert store.excluded_among([one, two, three]) == {three}
    store.exclude(one, commitment(1).hash)  # excluded again after a new breach
    assert store.is_excluded(one) is True


# ---------------------------------------------------------------------- the outbox and batches


def test_pending_by_department(store: Store) -> None:
    assert store.pending_by_department() == []
    add(store, 1, 2, now=100.0)
    add(store, 3, department=MARKET, now=50.0)
    add(store, 4, now=200.0)
    assert sorted(store.pending_by_department()) == [(HRSS, 3, 100.0), (MARKET, 1, 50.0)]
    store.form_batch(HRSS, 10, build_tree)
    assert store.pending_by_department() == [(MARKET, 1, 50.0)]


def test_form_batch_takes_the_oldest_first_and_stores_proofs(store: Store) -> None:
    hashes = add(store, 1, 2, 3, 4, 5)
    other = add(store, 6, department=MARKET)
    batch = store.form_batch(HRSS, 3, build_tree, now=300.0)
    assert isinstance(batch, BatchRow)
    root, _ = build_tree(hashes[:3])
    assert batch.root == root
    assert (batch.size, batch.department, batch.state) == (3, HRSS, "built")
    assert (batch.created_at, batch.attempts) == (300.0, 0)
    assert (batch.tx_hash, batch.sent_at, batch.block_number, batch.block_hash) == (
        None,
        None,
        None,
        None,
    )
    assert batch.anchored_at is None
    assert store.batch(batch.id) == batch
    assert store.batch_members(batch.id) == hashes[:3]
    for value in hashes[:3]:
        stored = store.get(value)
        assert stored is not None
        assert (stored.state, stored.batch_id) == ("batched", batch.id)
        assert stored.proof
        assert verify_proof(batch.root, value, stored.proof)
    for value in [*hashes[3:], *other]:
        assert state_of(store, value) == "pending"

    second = store.form_batch(HRSS, 3, build_tree)
    assert second is not None
    assert second.id != batch.id
    assert second.size == 2
    assert store.batch_members(second.id) == hashes[3:]
    assert store.form_batch(HRSS, 3, build_tree) is None  # nothing left: nothing retaken
    assert store.batch_members(batch.id) == hashes[:3]
    assert state_of(store, other[0]) == "pending"


def test_form_batch_with_nothing_pending(store: Store) -> None:
    assert store.form_batch(HRSS, 10, build_tree) is None
    add(store, 1, department=MARKET)
    assert store.form_batch(HRSS, 10, build_tree) is None
    assert store.batches_in("built", "sent", "anchored") == []


def test_a_batch_of_one_has_an_empty_proof(store: Store) -> None:
    [value] = add(store, 1)
    batch = store.form_batch(HRSS, 10, build_tree)
    assert batch is not None
    stored = store.get(value)
    assert stored is not None
    assert stored.proof == ()
    assert verify_proof(batch.root, value, stored.proof)


def test_a_failing_build_takes_nothing(store: Store) -> None:
    hashes = add(store, 1, 2)

    def broken(_: list[Hash32]) -> tuple[Hash32, dict[Hash32, list[Hash32]]]:
        raise RuntimeError("tree failed")

    with pytest.raises(RuntimeError, match="tree failed"):
        store.form_batch(HRSS, 10, broken)
    assert [state_of(store, h) for h in hashes] == ["pending", "pending"]
    assert store.batches_in("built") == []


def test_sent_anchored_and_unsent(store: Store) -> None:
    hashes = add(store, 1, 2, 3, now=100.0)
    batch = store.form_batch(HRSS, 10, build_tree, now=110.0)
    assert batch is not None

    store.mark_sent(batch.id, TX, now=120.0)
    sent = store.batch(batch.id)
    assert (sent.state, sent.tx_hash, sent.sent_at, sent.attempts) == ("sent", TX, 120.0, 1)
    assert [state_of(store, h) for h in hashes] == ["batched"] * 3
    assert store.anchoring_of(hashes[0]) is None
    store.mark_sent(batch.id, TX, now=125.0)  # resent
    assert (store.batch(batch.id).attempts, store.batch(batch.id).sent_at) == (2, 125.0)

    store.mark_anchored(batch.id, TX, 42, BLOCK, now=130.0)
    anchored = store.batch(batch.id)
    assert anchored.state == "anchored"
    assert (anchored.tx_hash, anchored.block_number, anchored.block_hash) == (TX, 42, BLOCK)
    assert anchored.anchored_at == 130.0
    assert [state_of(store, h) for h in hashes] == ["anchored"] * 3
    found = store.anchoring_of(hashes[1])
    assert found is not None
    found_batch, proof = found
    assert found_batch == anchored
    assert verify_proof(anchored.root, hashes[1], proof)

    store.mark_unsent(batch.id)  # reorged away: send again
    unsent = store.batch(batch.id)
    assert unsent.state == "built"
    assert (unsent.block_number, unsent.block_hash, unsent.anchored_at) == (None, None, None)
    assert [state_of(store, h) for h in hashes] == ["batched"] * 3
    assert store.anchoring_of(hashes[1]) is None
    assert store.batch_members(batch.id) == hashes


def test_batches_in(store: Store) -> None:
    add(store, 1, 2, 3, 4)
    first, second, third = (store.form_batch(HRSS, 1, build_tree) for _ in range(3))
    assert first is not None
    assert second is not None
    assert third is not None
    store.mark_sent(second.id, TX)
    store.mark_sent(third.id, keccak256(b"another transaction"))
    store.mark_anchored(third.id, keccak256(b"another transaction"), 7, BLOCK)
    assert [b.id for b in store.batches_in("built")] == [first.id]
    assert [b.id for b in store.batches_in("sent")] == [second.id]
    assert [b.id for b in store.batches_in("built", "sent")] == [first.id, second.id]
    assert [b.id for b in store.batches_in("anchored", "built")] == [first.id, third.id]
    assert store.batches_in() == []


def test_two_batchers_never_take_a_commitment_twice(store_url: str, store: Store) -> None:
    hashes = add(store, *range(60))
    other = Store(store_url)
    taken: list[int] = []
    lock = threading.Lock()

    def batcher(each: Store) -> Callable[[], None]:
        def run() -> None:
            while True:
                # PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: BEGIN IMMEDIATE. No conflicts.
                batch = each.form_batch(HRSS, 7, build_tree)
                if batch is None:
                    return
                with lock:
                    taken.append(batch.id)

        return run

    try:
        assert run_threads(batcher(store), batcher(other)) == []
    finally:
        other.close()
    members = [h for batch_id in taken for h in store.batch_members(batch_id)]
    assert sorted(members) == sorted(hashes)
    assert sum(store.batch(batch_id).size for batch_id in taken) == len(hashes)


# ---------------------------------------------------------------------- reporting


def test_status_of_an_empty_store(store: Store) -> None:
    assert store.status(now=1000.0) == StoreStatus(
        pending=0,
        in_flight=0,
        anchored=0,
        oldest_pending_age=None,
        last_anchored_block=None,
        batches_in_flight=0,
    )


def test_status(store: Store) -> None:
    add(store, 1, 2, now=100.0)  # anchored at block 40
    add(store, 3, now=105.0)  # anchored at block 42
    add(store, 4, 5, now=110.0)  # sent
    add(store, 6, now=115.0)  # built
    add(store, 7, now=150.0)  # pending
    add(store, 8, department=MARKET, now=140.0)  # pending
    early = store.form_batch(HRSS, 2, build_tree)
    late = store.form_batch(HRSS, 1, build_tree)
    sent = store.form_batch(HRSS, 2, build_tree)
    built = store.form_batch(HRSS, 1, build_tree)
    assert early is not None
    assert late is not None
    assert sent is not None
    assert built is not None
    store.mark_sent(late.id, TX)
    store.mark_anchored(late.id, TX, 42, BLOCK)
    store.mark_sent(early.id, keccak256(b"early"))
    store.mark_anchored(early.id, keccak256(b"early"), 40, BLOCK)
    store.mark_sent(sent.id, keccak256(b"sent"))
    assert store.status(now=200.0) == StoreStatus(
        pending=2,
        in_flight=3,
        anchored=3,
        oldest_pending_age=60.0,
        last_anchored_block=42,
        batches_in_flight=2,
    )
    assert store.status(now=0.0).oldest_pending_age == 0.0  # a clock behind: never negative


def test_anchoring_latencies(store: Store) -> None:
    assert store.anchoring_latencies() == []
    add(store, 1, now=100.0)
    add(store, 2, now=110.0)
    add(store, 3, now=120.0)
    batch = store.form_batch(HRSS, 2, build_tree)
    rest = store.form_batch(HRSS, 2, build_tree)
    assert batch is not None
    assert rest is not None
    store.mark_sent(rest.id, TX)  # sent, not anchored: no latency yet
    store.mark_anchored(batch.id, TX, 5, BLOCK, now=130.0)
    assert sorted(store.anchoring_latencies()) == [20.0, 30.0]


# ---------------------------------------------------------------------- the event index


def test_add_events_is_idempotent_by_transaction_and_log_index(store: Store) -> None:
    rows = [event(10, 0), event(10, 1), event(11, 0)]
    assert store.add_events(rows) == 3
    assert store.add_events(rows) == 0
    assert store.add_events([event(10, 1), event(12, 0)]) == 1
    duplicated = event(13, 0)
    assert store.add_events([duplicated, duplicated]) == 1
    assert store.add_events([]) == 0
    assert len(store.events()) == 5


def test_events_in_chain_order_and_filtered(store: Store) -> None:
    subject = keccak256(b"a root")
    store.add_events(
        [
            event(12, 0, "Recorded"),
            event(10, 3, subject=subject),
            event(10, 1, "Recorded", subject=subject),
            event(11, 0),
        ]
    )
    found = store.events()
    assert [(e["block_number"], e["log_index"]) for e in found] == [
        (10, 1),
        (10, 3),
        (11, 0),
        (12, 0),
    ]
    first = found[0]
    assert first["name"] == "Recorded"
    assert first["subject"] == subject
    assert first["tx_hash"] == keccak256(b"tx 10")
    assert first["block_hash"] == keccak256(b"block 10")
    assert json.loads(first["args"]) == {"block": 10, "index": 1}
    named = store.events(name="BatchAnchored")
    assert [(e["block_number"], e["log_index"]) for e in named] == [(10, 3), (11, 0)]
    about = store.events(subject=subject)
    assert [(e["block_number"], e["log_index"]) for e in about] == [(10, 1), (10, 3)]
    both = store.events(name="Recorded", subject=subject)
    assert [(e["block_number"], e["log_index"]) for e in both] == [(10, 1)]
    assert store.events(name="Nothing") == []


def test_drop_events_from(store: Store) -> None:
    store.add_events([event(10, 0), event(11, 0), event(11, 1), event(12, 0)])
    store.drop_events_from(11)
    assert [(e["block_number"], e["log_index"]) for e in store.events()] == [(10, 0)]
    assert store.add_events([event(11, 0)]) == 1  # re-indexed after the reorg
    store.drop_events_from(100)
    assert len(store.events()) == 2


def test_cursors(store: Store) -> None:
    assert store.cursor("events") is None
    store.set_cursor("events", 5)
    assert store.cursor("events") == 5
    store.set_cursor("events", 2**40)  # block numbers beyond 32 bits
    assert store.cursor("events") == 2**40
    store.set_cursor("events", 0)
    assert store.cursor("events") == 0
    assert store.cursor("other") is None


# ---------------------------------------------------------------------- SQLite: WAL, concurrency


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


def test_sqlite_pragmas_are_in_effect(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    try:
        for _ in range(2):  # a fresh connection, then one back from the pool
            with store.engine.connect() as connection:
                pragma = connection.exec_driver_sql
                assert pragma("PRAGMA journal_mode").scalar() == "wal"
                assert pragma("PRAGMA synchronous").scalar() == 2  # FULL
                assert pragma("PRAGMA foreign_keys").scalar() == 1
                assert pragma("PRAGMA busy_timeout").scalar() == 30_000
    finally:
        store.close()


def test_sqlite_readers_and_writers_in_two_stores(sqlite_url: str) -> None:
    writer, reader = Store(sqlite_url), Store(sqlite_url)
    done = threading.Event()
    reads = 0

    def write() -> None:
        try:
            for n in range(100):
                assert writer.add_commitments([commitment(n)], now=float(n)) == [True]
                if n % 10 == 9:
                    assert writer.form_batch(HRSS, 10, build_tree) is not None
                writer.set_cursor("events", n)
        finally:
            done.set()

    def read() -> None:
        nonlocal reads
        while not done.is_set():
            status = reader.status(now=1000.0)
            assert status.pending + status.in_flight <= 100
            reader.get(commitment(0).hash)
            reader.pending_by_department()
            reader.cursor("events")
            reads += 1

    def write_too() -> None:
        # a second writer on the other store: BEGIN IMMEDIATE and the busy timeout serialise
        for n in range(50):
            reader.add_events([event(n, 0)])
            reader.exclude(fingerprint(n), commitment(n).hash)

    try:
        assert run_threads(write, read, write_too) == []
        assert reads > 0
        assert reader.status(now=1000.0).in_flight == 100
        assert writer.cursor("events") == 99
        assert len(writer.events()) == 50
        assert writer.excluded_among([fingerprint(n) for n in range(50)]) == {
            fingerprint(n) for n in range(50)
        }
    finally:
        writer.close()
        reader.close()


def test_sqlite_a_reader_sees_committed_writes_only(sqlite_url: str) -> None:
    writer, reader = Store(sqlite_url), Store(sqlite_url)
    try:
        with writer.engine.execution_options(immediate=True).begin() as connection:
            connection.execute(text("INSERT INTO sync_state (name, value) VALUES ('events', 1)"))
            assert reader.cursor("events") is None  # WAL: the reader is not blocked
            assert reader.status().pending == 0
        assert reader.cursor("events") == 1
    finally:
        writer.close()
        reader.close()
