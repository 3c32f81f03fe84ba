"""Write the portable test vectors (commitment hashes, Merkle proofs) under tests/vectors.

Other implementations (a browser verifier, the Solidity contract, a port to another
language) check themselves against these files; tests/unit/test_vectors.py checks that the
committed files are exactly what this script makes today. Deterministic: no randomness, no
clock. Run it after a deliberate change to the canonical form or the tree layout:

    .venv/bin/python scripts/make_vectors.py          # rewrite the files
    .venv/bin/python scripts/make_vectors.py --check  # exit 1 if a file differs
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ledger import (  # noqa: E402  # noqa: E402  # noqa: E402
    Commitment,
    Hash32,
    MerkleTree,
    canonical_bytes,
    commitment_hash,
    keccak256,
    leaf_hash,
    make_resident_id,
    make_uscc,
    process_proof,
    verify_proof,
)

VECTORS = ROOT / "tests" / "vectors"
TREE_SIZES = (1, 2, 3, 5, 8, 13)
# Trees whose proofs are also broken on purpose (every size gets its good proofs).
BROKEN_SIZES = (1, 2, 5, 13)


def hex_of(data: bytes) -> str:
    return "0x" + data.hex()


def salt(label: str) -> str:
    return hex_of(keccak256(f"commitment-ledger vector salt {label}".encode()))


# ------------------------------------------------------------------------- commitments


def commitment_documents() -> list[tuple[str, dict[str, Any]]]:
    """Named documents covering each applicant kind, every claim op and the escaping rules."""
    person = {
        "schema_version": 1,
        "code": "11010520261102000001",
        "matter_code": "BJ-HRSS-0001",
        "department": "BJ-HRSS",
        "applicant": {
            "kind": "person",
            "name": "张伟",
            "id_type": "resident_id",
            "id_number": make_resident_id("110105", date(1988, 4, 12), 27),
        },
        "claims": [
            {"key": "social_insurance_consecutive_months", "op": ">=", "value": 84},
            {"key": "no_criminal_record", "op": "==", "value": True},
        ],
        "channel": "counter",
        "signed_at": "2026-11-02T09:00:07Z",
        "notice_hash": hex_of(keccak256(b"notice BJ-HRSS-0001")),
        "salt": salt("person"),
    }
    organisation = {
        "schema_version": 1,
        "code": "31010120261203000042",
        "matter_code": "BJ-SAMR-0003",
        "department": "BJ-SAMR",
        "applicant": {
            "kind": "organisation",
            # JSON escapes (quote, backslash), a character outside the BMP, CJK punctuation
            "name": 'Acme "Beijing" \\ 𠀋 科技有限公司（测试）',
            "id_type": "uscc",
            "id_number": make_uscc("310101", "MA1FL3XY"),
        },
        "claims": [
            {"key": "registered_capital_yuan", "op": ">", "value": 9007199254740991},
            {"key": "annual_report_filed_on", "op": "<=", "value": "2026-06-30"},
            {"key": "business_scope", "op": "in", "value": ["软件开发", "技术服务"]},
            {"key": "abnormal_operation_listed", "op": "!=", "value": True},
        ],
        "channel": "online",
        "signed_at": "2026-12-03T23:59:59Z",
        "notice_hash": hex_of(keccak256(b"notice BJ-SAMR-0003")),
        "salt": salt("organisation"),
    }
    passport = {
        "schema_version": 1,
        "code": "44030520260101999999",
        "matter_code": "BJ-HRSS-0002",
        "department": "BJ-HRSS",
        "applicant": {
            "kind": "person",
            "name": "Zoë O'Brien-Müller",
            "id_type": "passport",
            "id_number": "E12345678",
        },
        "claims": [
            {"key": "degree", "op": "in", "value": ["bachelor", "master"]},
            {"key": "age", "op": "<", "value": -1},
            {"key": "tax_paid_months", "op": "==", "value": 0},
        ],
        "channel": "online",
        "signed_at": "2026-01-01T00:00:00Z",
        "notice_hash": hex_of(bytes(32)),
        "salt": salt("passport"),
    }
    return [("person", person), ("organisation", organisation), ("passport", passport)]


def commitment_vectors() -> dict[str, Any]:
    vectors = []
    for name, document in commitment_documents():
        commitment = Commitment.from_json_obj(document)
        canonical = canonical_bytes(document)
        # The fast encoder the code hashes with must agree with the reference RFC 8785 one.
        assert commitment.canonical() == canonical, name
        assert commitment.hash() == commitment_hash(document) == keccak256(canonical), name
        # Keys in reverse order and indented: the canonical form must not depend on either.
        scrambled = json.dumps(_reversed_keys(document), indent=1, ensure_ascii=False)
        vectors.append(
            {
                "name": name,
                "input_json": scrambled,
                "canonical": canonical.decode("utf-8"),
                "canonical_hex": canonical.hex(),
                "hash": hex_of(commitment.hash()),
            }
        )
    return {
        "about": (
            "Commitment documents (schema version 1): input_json is any JSON spelling, "
            "canonical is its RFC 8785 (JCS) form as UTF-8 text and hex, hash is "
            "keccak256(canonical), the value anchored on chain. Made by scripts/make_vectors.py."
        ),
        "commitments": vectors,
    }


def _reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(item) for item in value]
    return value


# ------------------------------------------------------------------------- Merkle trees


def tree_value(index: int) -> Hash32:
    """The index-th value; the tree of size n holds values 0..n-1, so trees share values."""
    return keccak256(f"commitment-ledger vector value {index}".encode())


GARBAGE = keccak256(b"commitment-ledger vector garbage")


def flip_bit(node: bytes, bit: int = 0) -> Hash32:
    flipped = bytearray(node)
    flipped[bit // 8] ^= 0x80 >> (bit % 8)
    return Hash32(bytes(flipped))


def tree_of(size: int) -> MerkleTree:
    return MerkleTree.build([tree_value(i) for i in range(size)])


def tree_vector(size: int) -> dict[str, Any]:
    tree = tree_of(size)
    values = list(tree)
    return {
        "size": size,
        "root": hex_of(tree.root),
        "values": [hex_of(value) for value in values],
        "sorted_leaves": sorted(hex_of(leaf_hash(value)) for value in values),
        "proofs": [
            {
                "index": index,
                "value": hex_of(value),
                "leaf": hex_of(leaf_hash(value)),
                "proof": [hex_of(node) for node in tree.proof(value)],
            }
            for index, value in enumerate(values)
        ],
    }


def _case(name: str, root: bytes, value: bytes, proof: list[Hash32], valid: bool) -> dict[str, Any]:
    # The generator holds itself to each verdict: a "broken" proof that verified would be a
    # vector that checks nothing.
    assert verify_proof(Hash32(root), Hash32(value), proof) is valid, name
    return {
        "name": name,
        "root": hex_of(root),
        "value": hex_of(value),
        "proof": [hex_of(node) for node in proof],
        "valid": valid,
    }


def good_cases(size: int) -> list[dict[str, Any]]:
    tree = tree_of(size)
    return [
        _case(f"size-{size}/value-{i}/good", tree.root, value, tree.proof(value), True)
        for i, value in enumerate(tree)
    ]


def broken_cases(size: int) -> list[dict[str, Any]]:
    """Proofs broken on purpose, in the manner of transparency-dev/merkle's verify tests."""
    tree = tree_of(size)
    # The nearest other size: both trees hold value 0, with different proofs and roots.
    other = tree_of(min((s for s in TREE_SIZES if s != size), key=lambda s: abs(s - size)))
    index = size // 2
    value = tree_value(index)
    proof = tree.proof(value)
    root = tree.root
    name = f"size-{size}/value-{index}"
    broken: list[tuple[str, bytes, bytes, list[Hash32]]] = [
        ("wrong-value", root, tree_value(1000), proof),
        ("leaf-as-value", root, leaf_hash(value), proof),
        ("flipped-bit-in-value", root, flip_bit(value, 255), proof),
        ("wrong-root", other.root, value, proof),
        ("flipped-bit-in-root", flip_bit(root, 7), value, proof),
        ("extra-sibling-appended", root, value, [*proof, root]),
        ("garbage-after", root, value, [*proof, GARBAGE]),
        ("garbage-before", root, value, [GARBAGE, *proof]),
        ("proof-from-other-tree", root, tree_value(0), other.proof(tree_value(0))),
    ]
    if size > 1:
        broken += [
            ("wrong-index", root, tree_value((index + 1) % size), proof),
            ("empty-proof", root, value, []),
            ("sibling-dropped-first", root, value, proof[1:]),
            ("sibling-dropped-last", root, value, proof[:-1]),
            ("sibling-duplicated", root, value, [proof[0], *proof]),
        ]
        broken += [
            (
                f"flipped-bit-in-sibling-{k}",
                root,
                value,
                [*proof[:k], flip_bit(node, 255), *proof[k + 1 :]],
            )
            for k, node in enumerate(proof)
        ]
    if len(proof) > 1:
        broken.append(("siblings-reversed", root, value, proof[::-1]))
        # The leaf's parent posing as a value: the leaf's double hash keeps it out.
        parent = process_proof(leaf_hash(value), proof[:1])
        broken.append(("inner-node-as-value", root, parent, proof[1:]))
    return [_case(f"{name}/{label}", r, v, p, False) for label, r, v, p in broken]


def malformed_cases() -> list[dict[str, Any]]:
    """Inputs that are not 32-byte nodes: a verifier must refuse them (ledger: MerkleError)."""
    tree = tree_of(5)
    value = tree_value(2)
    proof = [hex_of(node) for node in tree.proof(value)]
    root, value_hex = hex_of(tree.root), hex_of(value)
    cases = [
        ("sibling-one-byte-short", root, value_hex, [proof[0][:-2], *proof[1:]]),
        ("sibling-one-byte-long", root, value_hex, [proof[0] + "00", *proof[1:]]),
        ("value-one-byte-short", root, value_hex[:-2], proof),
        ("root-empty", "0x", value_hex, proof),
    ]
    return [
        {"name": f"size-5/value-2/{name}", "root": r, "value": v, "proof": p}
        for name, r, v, p in cases
    ]


def merkle_vectors() -> dict[str, Any]:
    cases = [case for size in TREE_SIZES for case in good_cases(size)]
    cases += [case for size in BROKEN_SIZES for case in broken_cases(size)]
    return {
        "about": (
            "OpenZeppelin StandardMerkleTree over bytes32 values, as ledger/merkle.py builds: "
            "leaf = keccak256(bytes.concat(keccak256(abi.encode(value)))), leaves sorted, "
            "inner node = keccak256 of its children smaller first, proof = siblings from the "
            "leaf up. cases: MerkleProof.verify(proof, root, leaf(value)) must equal valid. "
            "malformed: not 32-byte nodes, to be refused. Made by scripts/make_vectors.py."
        ),
        "trees": [tree_vector(size) for size in TREE_SIZES],
        "case_count": len(cases),
        "cases": cases,
        "malformed": malformed_cases(),
    }


# ------------------------------------------------------------------------- files


def vector_files() -> dict[str, str]:
    """File name under tests/vectors -> its text, exactly as committed."""
    return {
        "commitments.json": _json_text(commitment_vectors()),
        "merkle.json": _json_text(merkle_vectors()),
    }


def _json_text(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file differs")
    check = parser.parse_args().check
    stale = []
    for name, text in vector_files().items():
        path = VECTORS / name
        if path.exists() and path.read_text("utf-8") == text:
            continue
        stale.append(name)
        if not check:
            path.write_text(text, "utf-8")
    verb = "differ from what the code makes today" if check else "written"
    print(f"{', '.join(stale) or 'no files'} {verb}" if stale else "vectors are up to date")
    sys.exit(1 if check and stale else 0)


if __name__ == "__main__":
    main()
