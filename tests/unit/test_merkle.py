"""Merkle batches: OpenZeppelin-compatible vectors, proofs broken on purpose, properties."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import (
    Hash32,
    MerkleError,
    MerkleTree,
    keccak256,
    leaf_hash,
    process_proof,
    to_hash32,
    verify_proof,
)


def word(n: int) -> Hash32:
    return Hash32(n.to_bytes(32, "big"))


def values(count: int, seed: int = 0) -> list[Hash32]:
    return [keccak256(f"commitment {seed}/{i}".encode()) for i in range(count)]


def flip_bit(node: bytes, bit: int = 0) -> Hash32:
    changed = bytearray(node)
    changed[bit // 8] ^= 1 << (bit % 8)
    return Hash32(bytes(changed))


# Computed by @openzeppelin/merkle-tree 1.0.8:
# StandardMerkleTree.of([[v1], [v2], [v3]], ["bytes32"]) for the words 1, 2, 3.
LEAF_1 = to_hash32("0xb5d9d894133a730aa651ef62d26b0ffa846233c74177a591a4a896adfda97d22")
LEAF_2 = to_hash32("0x1ab0c6948a275349ae45a06aad66a8bd65ac18074615d53676c09b67809099e0")
LEAF_3 = to_hash32("0x2584db4a68aa8b172f70bc04e2e74541617c003374de6eb4b295e823e5beab01")
NODE_23 = to_hash32("0x673620737675e2755ce8269a99904022d15da8d5843f5aec205cd243ff80240a")
ROOT_12 = to_hash32("0xe685571b7e25a4a0391fb8daa09dc8d3fbb3382504525f89a2334fbbf8f8e92c")
ROOT_123 = to_hash32("0x6115218373392d12cc18a3d50ad2a53a2c99b391060070dfc0ebbbbe158ec944")


# --- known vectors ---------------------------------------------------------------------------


def test_leaf_is_keccak_of_keccak_of_the_value() -> None:
    assert leaf_hash(word(1)) == LEAF_1 == keccak256(keccak256(word(1)))
    assert MerkleTree.leaf_hash(word(2)) == LEAF_2


def test_single_value_tree_has_the_leaf_as_root_and_an_empty_proof() -> None:
    tree = MerkleTree.build([word(1)])
    assert tree.root == LEAF_1
    assert tree.proof(word(1)) == []
    assert verify_proof(tree.root, word(1), [])


def test_two_value_tree_matches_openzeppelin() -> None:
    tree = MerkleTree.build([word(1), word(2)])
    assert tree.root == ROOT_12
    assert tree.proof(word(1)) == [LEAF_2]
    assert tree.proof(word(2)) == [LEAF_1]


def test_three_value_tree_matches_openzeppelin_layout() -> None:
    tree = MerkleTree.build([word(1), word(2), word(3)])
    assert tree.root == ROOT_123
    # Sorted leaves LEAF_2 < LEAF_3 < LEAF_1 sit at indices 4, 3, 2: the largest pairs
    # with the root's other child, the two smaller ones share a parent.
    assert tree.proof(word(1)) == [NODE_23]
    assert tree.proof(word(2)) == [LEAF_3, LEAF_1]
    assert tree.proof(word(3)) == [LEAF_2, LEAF_1]


def test_input_order_does_not_change_the_tree() -> None:
    batch = values(50)
    shuffled = batch[:]
    random.Random(7).shuffle(shuffled)
    first, second = MerkleTree.build(batch), MerkleTree.build(shuffled)
    assert first.root == second.root
    assert first.proofs() == second.proofs()
    assert list(second) == shuffled


def test_proofs_lists_every_value_in_input_order() -> None:
    batch = values(33)
    tree = MerkleTree.build(batch)
    proofs = tree.proofs()
    assert list(proofs) == batch
    assert len(tree) == 33
    assert all(proofs[value] == tree.proof(value) for value in batch)
    assert batch[0] in tree
    assert word(0) not in tree


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 8, 9, 255, 256, 257])
def test_every_proof_verifies_and_has_logarithmic_length(count: int) -> None:
    tree = MerkleTree.build(values(count))
    for value, proof in tree.proofs().items():
        assert verify_proof(tree.root, value, proof)
        assert len(proof) <= max(count - 1, 0).bit_length()


def test_hundred_thousand_leaves_build_with_all_proofs() -> None:
    batch = values(100_000)
    tree = MerkleTree.build(batch)
    proofs = tree.proofs()
    assert len(proofs) == 100_000
    for value in batch[::9973]:
        assert verify_proof(tree.root, value, proofs[value])
        assert len(proofs[value]) in (16, 17)


# --- building refuses bad input -----------------------------------------------------------


def test_empty_batch_is_refused() -> None:
    with pytest.raises(MerkleError, match="at least one value"):
        MerkleTree.build([])


def test_repeated_value_is_refused() -> None:
    with pytest.raises(MerkleError, match=f"0x{'00' * 31}02 appears more than once"):
        MerkleTree.build([word(1), word(2), word(3), word(2)])


@pytest.mark.parametrize("bad", [b"\x01" * 31, b"\x01" * 33, b"", "0x" + "00" * 32])
def test_values_that_are_not_32_bytes_are_refused(bad: object) -> None:
    with pytest.raises(MerkleError, match="value must be 32 bytes"):
        MerkleTree.build([word(1), bad])  # type: ignore[list-item]


def test_proof_of_an_absent_value_is_refused() -> None:
    tree = MerkleTree.build(values(4))
    with pytest.raises(MerkleError, match="is not in this tree"):
        tree.proof(word(1))


# --- proofs broken on purpose: every one must be rejected --------------------------------


@pytest.fixture(scope="module")
def tree() -> MerkleTree:
    return MerkleTree.build(values(13))


def broken_proofs(tree: MerkleTree) -> dict[str, tuple[Hash32, Hash32, list[Hash32]]]:
    """Name -> (root, value, proof), each wrong in one way, after transparency-dev/merkle."""
    batch = list(tree)
    value, neighbour = batch[5], batch[6]
    proof = tree.proof(value)
    other_tree = MerkleTree.build(values(13, seed=1))
    return {
        "other leaf's proof": (tree.root, value, tree.proof(neighbour)),
        "value not in tree": (tree.root, word(99), proof),
        "value bit flipped": (tree.root, flip_bit(value, 255), proof),
        "first element bit flipped": (tree.root, value, [flip_bit(proof[0]), *proof[1:]]),
        "last element bit flipped": (tree.root, value, [*proof[:-1], flip_bit(proof[-1], 77)]),
        "root bit flipped": (flip_bit(tree.root, 3), value, proof),
        "element dropped": (tree.root, value, proof[1:]),
        "last element dropped": (tree.root, value, proof[:-1]),
        "element appended": (tree.root, value, [*proof, proof[-1]]),
        "garbage before": (tree.root, value, [keccak256(b"garbage"), *proof]),
        "garbage after": (tree.root, value, [*proof, keccak256(b"garbage")]),
        "empty proof": (tree.root, value, []),
        "proof for another root": (other_tree.root, value, proof),
        "another tree's proof": (tree.root, value, other_tree.proof(list(other_tree)[5])),
        "zero elements": (tree.root, value, [Hash32(bytes(32))] * len(proof)),
        "leaf hash given as value": (tree.root, leaf_hash(value), proof),
    }


def test_every_broken_proof_is_rejected(tree: MerkleTree) -> None:
    batch = list(tree)
    assert verify_proof(tree.root, batch[5], tree.proof(batch[5]))
    accepted = [name for name, case in broken_proofs(tree).items() if verify_proof(*case)]
    assert accepted == []


def test_an_inner_node_cannot_pass_for_a_value(tree: MerkleTree) -> None:
    # Without the double leaf hash, the parent of two leaves plus the rest of the path
    # would prove a "value" that was never committed (a second-preimage forgery).
    value = list(tree)[5]
    proof = tree.proof(value)
    inner = process_proof(leaf_hash(value), proof[:1])
    assert process_proof(inner, proof[1:]) == tree.root
    assert not verify_proof(tree.root, inner, proof[1:])


@pytest.mark.parametrize(
    ("root", "value", "proof", "what"),
    [
        (b"\x00" * 31, b"\x00" * 32, [], "root must be 32 bytes"),
        (b"\x00" * 32, b"\x00" * 33, [], "value must be 32 bytes"),
        (b"\x00" * 32, b"\x00" * 32, [b"\x00" * 31], "proof element 0 must be 32 bytes"),
        (b"\x00" * 32, b"\x00" * 32, [b"\x00" * 32, "0x00"], "proof element 1 must be 32"),
    ],
    ids=["short root", "long value", "truncated element", "hex string element"],
)
def test_malformed_input_raises_instead_of_answering(
    root: bytes, value: bytes, proof: list[bytes], what: str
) -> None:
    with pytest.raises(MerkleError, match=what):
        verify_proof(Hash32(root), Hash32(value), [Hash32(p) for p in proof])


def test_pair_hash_is_commutative() -> None:
    assert process_proof(LEAF_2, [LEAF_3]) == process_proof(LEAF_3, [LEAF_2]) == NODE_23
    assert keccak256(min(LEAF_2, LEAF_3) + max(LEAF_2, LEAF_3)) == NODE_23


# --- properties --------------------------------------------------------------------------------

distinct_batches = st.lists(
    st.binary(min_size=32, max_size=32).map(Hash32), min_size=1, max_size=80, unique=True
)


@pytest.mark.property
@given(batch=distinct_batches)
def test_property_every_proof_of_a_random_tree_verifies(batch: list[Hash32]) -> None:
    tree = MerkleTree.build(batch)
    proofs = tree.proofs()
    assert list(proofs) == batch
    assert all(verify_proof(tree.root, value, proof) for value, proof in proofs.items())


@pytest.mark.property
@given(batch=distinct_batches, data=st.data())
def test_property_a_flipped_bit_anywhere_is_rejected(
    batch: list[Hash32], data: st.DataObject
) -> None:
    tree = MerkleTree.build(batch)
    value = data.draw(st.sampled_from(batch), label="value")
    proof = tree.proof(value)
    bit = data.draw(st.integers(0, 255), label="bit")
    target = data.draw(st.integers(-2, len(proof) - 1), label="target")
    if target == -2:
        assert not verify_proof(flip_bit(tree.root, bit), value, proof)
    elif target == -1:
        assert not verify_proof(tree.root, flip_bit(value, bit), proof)
    else:
        proof[target] = flip_bit(proof[target], bit)
        assert not verify_proof(tree.root, value, proof)


@pytest.mark.property
@given(batch=distinct_batches.filter(lambda b: len(b) >= 2), data=st.data())
def test_property_a_proof_of_a_different_length_is_rejected(
    batch: list[Hash32], data: st.DataObject
) -> None:
    tree = MerkleTree.build(batch)
    value = data.draw(st.sampled_from(batch), label="value")
    proof = tree.proof(value)
    extra = data.draw(st.binary(min_size=32, max_size=32).map(Hash32), label="extra")
    at = data.draw(st.integers(0, len(proof)), label="at")
    assert not verify_proof(tree.root, value, [*proof[:at], extra, *proof[at:]])
    cut = data.draw(st.integers(0, len(proof) - 1), label="cut")
    assert not verify_proof(tree.root, value, proof[:cut] + proof[cut + 1 :])


@pytest.mark.property
@given(batch=distinct_batches.filter(lambda b: len(b) >= 2), data=st.data())
def test_property_another_values_proof_is_rejected(
    batch: list[Hash32], data: st.DataObject
) -> None:
    tree = MerkleTree.build(batch)
    value, other = data.draw(st.permutations(batch), label="order")[:2]
    assert not verify_proof(tree.root, value, tree.proof(other))
