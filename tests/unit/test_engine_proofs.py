"""The verification run slices proofs from the batch trees where it checks them (the worker
processes): the same proofs, checked as `verify_proof` checks them, as the store gives."""

from __future__ import annotations

from ledger import (
    Hash32,
    MerkleTree,
    NewCommitment,
    Store,
    build_tree,
    keccak256,
    leaf_hash,
    verify_proof,
)
from verifier.engine.worker import ProofChecker

HRSS = "BJ-HRSS"


def _values(count: int, label: str = "document") -> list[Hash32]:
    return [keccak256(f"{label} {n}".encode()) for n in range(count)]


def test_sliced_proofs_are_the_trees_and_check_as_verify_proof() -> None:
    values = _values(37)
    tree = MerkleTree.build(values)
    checker = ProofChecker()
    trees = {7: tree.nodes}
    for value in values:
        anchoring, leaf = checker.anchoring(value, (tree.root, None, 7), trees)
        assert anchoring == (tree.root, tuple(tree.proof(value)))
        assert leaf == leaf_hash(value)
        assert checker.proves(anchoring, value, leaf)
        assert checker.proves(anchoring, value, None)  # a stored proof: the leaf is made
        assert verify_proof(tree.root, value, anchoring[1])


def test_a_proof_that_does_not_lead_to_the_root_is_refused() -> None:
    values = _values(8)
    tree, other = MerkleTree.build(values), MerkleTree.build(_values(8, "other"))
    checker = ProofChecker()
    anchoring, leaf = checker.anchoring(values[2], (other.root, None, 1), {1: tree.nodes})
    assert anchoring is not None and not checker.proves(anchoring, values[2], leaf)
    proof = tuple(tree.proof(values[2]))
    assert not checker.proves((tree.root, proof), values[3], None)  # another value's proof
    flipped = (bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:])
    assert not checker.proves((tree.root, flipped), values[2], None)  # type: ignore[arg-type]


def test_a_value_its_batch_tree_does_not_hold_has_no_anchoring() -> None:
    tree = MerkleTree.build(_values(5))
    stranger = keccak256(b"not a leaf")
    assert ProofChecker().anchoring(stranger, (tree.root, None, 1), {1: tree.nodes}) == (
        None,
        leaf_hash(stranger),
    )


def test_the_checker_forgets_its_nodes_and_still_checks() -> None:
    values = _values(16)
    tree = MerkleTree.build(values)
    checker = ProofChecker(forget_after=3)
    for value in values * 2:
        anchoring, leaf = checker.anchoring(value, (tree.root, None, 1), {1: tree.nodes})
        assert anchoring is not None and checker.proves(anchoring, value, leaf)
        assert len(checker._parents) <= 3 * 4  # at most three proofs' pairs of nodes


def _plain_build(values: list[Hash32]) -> tuple[Hash32, dict[Hash32, list[Hash32]]]:
    root, proofs = build_tree(values)
    return root, dict(proofs)  # a plain mapping, no nodes: each member keeps its proof


def test_refs_and_trees_give_the_stores_anchorings(store: Store) -> None:
    hashes: list[Hash32] = []
    for number, build in enumerate((build_tree, _plain_build)):
        items = [
            NewCommitment(
                hash=value,
                code=f"C{number}{n:05d}",
                matter_code="M-001",
                department=HRSS,
                applicant_fingerprint=keccak256(f"applicant {number} {n}".encode()),
                sealed=b"sealed",
                wrapped_key=b"wrapped",
            )
            for n, value in enumerate(_values(9, f"batch {number}"))
        ]
        assert all(store.add_commitments(items, now=100.0))
        batch = store.form_batch(HRSS, 100, build, now=101.0)
        assert batch is not None
        tx = keccak256(f"tx {number}".encode())
        store.mark_sent(batch.id, tx)
        store.mark_anchored(batch.id, tx, 7, keccak256(b"block"))
        hashes += [Hash32(item.hash) for item in items]
    refs = store.anchor_refs_of(hashes)
    assert sum(ref[1] is None for ref in refs.values()) == 9  # the first batch's: in its tree
    trees = store.batch_trees(sorted({ref[2] for ref in refs.values()}))
    assert len(trees) == 1  # the second batch keeps no tree
    checker = ProofChecker()
    sliced = {h: checker.anchoring(Hash32(h), ref, trees)[0] for h, ref in refs.items()}
    assert sliced == store.anchorings_of(hashes)
    assert len(sliced) == len(hashes) == 18
