"""Batches keep their Merkle tree once (ledger v6); members' proofs are sliced from it,
identical to the proofs the tree gave; stores from before v6 keep and read their own."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from ledger import (
    Hash32,
    MerkleTree,
    NewCommitment,
    Store,
    StoreError,
    batches,
    build_tree,
    commitments,
    keccak256,
    proof_in_nodes,
    verify_proof,
)
from ledger.store import SQLITE_PAGE_BYTES, SQLITE_WAL_LIMIT_BYTES
from ledger.tables import MIGRATIONS, apply_migrations, schema_migrations

HRSS = "BJ-HRSS"
TX = keccak256(b"a transaction")
BLOCK = keccak256(b"a block")


def commitment(n: int) -> NewCommitment:
    return NewCommitment(
        hash=keccak256(f"document {n}".encode()),
        code=f"C{n:06d}",
        matter_code="M-001",
        department=HRSS,
        applicant_fingerprint=keccak256(f"applicant {n}".encode()),
        sealed=b"sealed document " + str(n).encode(),
        wrapped_key=b"wrapped key " + str(n).encode(),
    )


def fill(store: Store, count: int, start: int = 0) -> list[Hash32]:
    items = [commitment(n) for n in range(start, start + count)]
    assert all(store.add_commitments(items, now=100.0))
    return [Hash32(item.hash) for item in items]


def stored_proofs(store: Store) -> dict[bytes, bytes | None]:
    with store.engine.connect() as connection:
        rows = connection.execute(select(commitments.c.hash, commitments.c.proof)).all()
    return {bytes(h): None if p is None else bytes(p) for h, p in rows}


def test_proof_in_nodes_gives_each_proof_of_the_tree() -> None:
    for size in (1, 2, 3, 4, 5, 7, 8, 9, 100, 257):
        values = [keccak256(f"leaf {size} {i}".encode()) for i in range(size)]
        tree = MerkleTree.build(values)
        proofs = tree.proofs()
        assert proofs.nodes == tree.nodes
        assert len(tree.nodes) == 32 * (2 * size - 1)
        for value in values:
            assert proof_in_nodes(tree.nodes, value) == tuple(tree.proof(value))
        assert proof_in_nodes(tree.nodes, keccak256(b"not a leaf")) is None


def test_a_batch_keeps_its_tree_not_each_proof(store: Store) -> None:
    hashes = fill(store, 37)
    batch = store.form_batch(HRSS, 100, build_tree)
    assert batch is not None
    tree = MerkleTree.build(hashes)
    with store.engine.connect() as connection:
        kept = connection.execute(select(batches.c.tree).where(batches.c.id == batch.id)).scalar()
    assert kept is not None and bytes(kept) == tree.nodes
    assert set(stored_proofs(store).values()) == {None}  # no member keeps its own
    for value in hashes:
        stored = store.get(value)
        assert stored is not None
        assert stored.proof == tuple(tree.proof(value))
    assert [s.proof for s in store.with_code("C000005")] == [tuple(tree.proof(hashes[5]))]
    assert store.anchoring_of(hashes[0]) is None  # not anchored yet
    assert store.anchorings_of(hashes) == {}
    store.mark_sent(batch.id, TX)
    store.mark_anchored(batch.id, TX, 7, BLOCK)
    anchored = store.anchoring_of(hashes[3])
    assert anchored is not None
    assert anchored[0].root == tree.root
    assert anchored[1] == tuple(tree.proof(hashes[3]))
    assert verify_proof(tree.root, hashes[3], anchored[1])
    found = store.anchorings_of(hashes)
    assert found == {h: (tree.root, tuple(tree.proof(h))) for h in hashes}
    assert store.batches_in("anchored")[0] == store.batch(batch.id)


def test_a_build_without_nodes_stores_each_proof(store: Store) -> None:
    hashes = fill(store, 5)

    def plain_build(values: list[Hash32]) -> tuple[Hash32, dict[Hash32, list[Hash32]]]:
        root, proofs = build_tree(values)
        return root, dict(proofs)  # a plain mapping: no nodes

    batch = store.form_batch(HRSS, 10, plain_build)
    assert batch is not None
    tree = MerkleTree.build(hashes)
    kept = stored_proofs(store)
    assert all(kept[h] == b"".join(tree.proof(h)) for h in hashes)
    assert all(store.get(h).proof == tuple(tree.proof(h)) for h in hashes)  # type: ignore[union-attr]


def test_a_re_formed_batch_drops_its_tree_and_keeps_the_new_proofs(store: Store) -> None:
    hashes = fill(store, 6)
    batch = store.form_batch(HRSS, 10, build_tree)
    assert batch is not None
    extra = keccak256(b"an extra leaf")
    root, proofs = build_tree([*hashes, extra])
    del proofs[extra]
    store.reform_batch(batch.id, root, len(hashes) + 1, proofs)
    with store.engine.connect() as connection:
        kept = connection.execute(select(batches.c.tree).where(batches.c.id == batch.id)).scalar()
    assert kept is None
    for value in hashes:
        stored = store.get(value)
        assert stored is not None
        assert stored.proof == tuple(proofs[value])
        assert verify_proof(root, value, stored.proof)


def test_a_tree_that_lacks_a_member_is_an_error(store: Store) -> None:
    hashes = fill(store, 4)
    batch = store.form_batch(HRSS, 10, build_tree)
    assert batch is not None
    other = MerkleTree.build([keccak256(f"other {i}".encode()) for i in range(4)]).nodes
    with store.engine.begin() as connection:
        connection.execute(batches.update().where(batches.c.id == batch.id).values(tree=other))
    with pytest.raises(StoreError, match="not a leaf"):
        store.get(hashes[0])


def test_a_store_from_before_v6_migrates_and_reads_its_proofs(store_url: str) -> None:
    """Made at v5 with proofs kept by each member; opened now: the tree column is added,
    its old batch reads the same proofs, and a new batch keeps its tree."""
    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as connection:
        apply_migrations(
            connection, schema_migrations, {v: s for v, s in MIGRATIONS.items() if v <= 5}
        )
        columns = [row[0] for row in connection.execute(select(schema_migrations.c.version))]
        assert max(columns) == 5
    engine.dispose()
    old_values = [commitment(n) for n in range(9)]
    tree = MerkleTree.build([Hash32(c.hash) for c in old_values])
    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as connection:
        batch_id = connection.execute(
            text(
                "INSERT INTO batches (root, size, department, state, created_at, attempts,"
                " tx_hash, block_number, block_hash) VALUES (:root, 9, :dep, 'anchored', 1.0,"
                " 1, :tx, 3, :block) RETURNING id"
            ),
            {"root": tree.root, "dep": HRSS, "tx": TX, "block": BLOCK},
        ).scalar()
        for item in old_values:
            connection.execute(
                text(
                    "INSERT INTO commitments (hash, code, matter_code, department,"
                    " applicant_fingerprint, received_at, state, batch_id, proof, sealed,"
                    " wrapped_key) VALUES (:h, :code, 'M-001', :dep, :fp, 1.0, 'anchored',"
                    " :batch, :proof, :sealed, :key)"
                ),
                {
                    "h": item.hash,
                    "code": item.code,
                    "dep": HRSS,
                    "fp": item.applicant_fingerprint,
                    "batch": batch_id,
                    "proof": b"".join(tree.proof(item.hash)),
                    "sealed": item.sealed,
                    "key": item.wrapped_key,
                },
            )
    engine.dispose()
    store = Store(store_url)
    try:
        for item in old_values:
            digest = Hash32(item.hash)
            stored = store.get(digest)
            assert stored is not None
            assert stored.proof == tuple(tree.proof(digest))
            assert store.sealed(digest) == (item.sealed, item.wrapped_key)
        found = store.anchorings_of([Hash32(c.hash) for c in old_values])
        assert found == {c.hash: (tree.root, tuple(tree.proof(Hash32(c.hash)))) for c in old_values}
        new = fill(store, 3, start=100)
        batch = store.form_batch(HRSS, 10, build_tree)
        assert batch is not None
        assert stored_proofs(store)[new[0]] is None
        fresh = MerkleTree.build(new)
        assert all(store.get(h).proof == tuple(fresh.proof(h)) for h in new)  # type: ignore[union-attr]
    finally:
        store.close()


def test_a_new_sqlite_store_takes_8_kib_pages_and_bounds_its_wal(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        with store.engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA page_size").scalar() == SQLITE_PAGE_BYTES
            assert pragma("PRAGMA journal_size_limit").scalar() == SQLITE_WAL_LIMIT_BYTES
            assert pragma("PRAGMA wal_autocheckpoint").scalar() == 512
    finally:
        store.close()
