"""Portable proof bundles: plain JSON that anyone can check against any node of the chain.

Every bundle is made here: from an anchoring transaction's receipt (``receipt_bundle``) or
from the store's record of an anchored batch (``stored_bundle``), and parsed and checked.

Version 2 (written) names only what a checker cannot derive, so a bundle of a 100,000-leaf
batch (17 siblings) stays under 1,200 bytes of JSON::

    {"version": 2, "commitment": "0x<32 bytes>", "root": "0x<32 bytes>",
     "proof": "<base64url, no padding, of the siblings' 32 bytes each, leaf upwards>",
     "chain_id": 31337, "contract": "0x<checksummed address>",
     "transaction": "0x<32 bytes>", "block_number": 12}

The leaf is keccak256(keccak256(commitment)) (StandardMerkleTree, bytes32); the root is
zero and the proof "" for a commitment anchored singly; the block's hash is the node's
answer for the transaction. Version 1 (read, as given out before) carried the leaf, the
proof as a list of 0x-hex hashes and the block hash, which is then checked too.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hexbytes import HexBytes
from web3 import Web3

from ledger.artifact import load_artifact
from ledger.chain import Chain
from ledger.contract import ZERO_HASH, LedgerContract
from ledger.errors import ChainError, LedgerError, MerkleError, ProofBundleError
from ledger.merkle import leaf_hash, process_proof
from ledger.types import Hash32, hex32, to_hash32

if TYPE_CHECKING:
    from web3.types import TxReceipt

    from ledger.store import BatchRow

BUNDLE_VERSION = 2
"""The version written; `ProofBundle.from_json_obj` reads it and version 1."""
MAX_PROOF_NODES = 32
"""A batch holds at most 2**32 - 1 commitments (uint32 size): no proof is longer."""
_FIELDS = {
    1: (
        "version",
        "commitment",
        "leaf",
        "root",
        "proof",
        "chain_id",
        "contract",
        "transaction",
        "block_number",
        "block_hash",
    ),
    2: (
        "version",
        "commitment",
        "root",
        "proof",
        "chain_id",
        "contract",
        "transaction",
        "block_number",
    ),
}
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


@dataclass(frozen=True)
class ProofBundle:
    """Where and how a commitment hash was anchored. `root` is zero for a single anchor.

    `block_hash` is None for the bundles made now (version 2): the node names the block of
    the transaction; a version 1 bundle's block hash is kept and checked.
    """

    commitment: Hash32
    root: Hash32
    proof: tuple[Hash32, ...]
    chain_id: int
    contract: str
    transaction: bytes
    block_number: int
    block_hash: bytes | None = None

    @property
    def leaf(self) -> Hash32:
        """The Merkle leaf of the commitment (StandardMerkleTree, bytes32)."""
        return leaf_hash(self.commitment)

    @property
    def single(self) -> bool:
        """Whether the commitment was anchored alone rather than in a batch."""
        return self.root == ZERO_HASH

    def to_json_obj(self) -> dict[str, Any]:
        """The bundle as plain JSON (version 2)."""
        return {
            "version": BUNDLE_VERSION,
            "commitment": hex32(self.commitment),
            "root": hex32(self.root),
            "proof": encode_proof(self.proof),
            "chain_id": self.chain_id,
            "contract": self.contract,
            "transaction": hex32(self.transaction),
            "block_number": self.block_number,
        }

    @classmethod
    def from_json_obj(cls, obj: object) -> ProofBundle:
        """Parse a bundle of version 2 or 1; ProofBundleError naming the first field that is
        missing or wrong."""
        if not isinstance(obj, dict):
            raise ProofBundleError("a proof bundle must be a JSON object")
        version = obj.get("version")
        if isinstance(version, bool) or version not in _FIELDS:
            raise ProofBundleError(
                f"proof bundle version must be one of {', '.join(map(str, _FIELDS))}"
            )
        fields = _FIELDS[version]
        missing = [name for name in fields if name not in obj]
        if missing:
            raise ProofBundleError(f"proof bundle lacks field(s): {', '.join(missing)}")
        unknown = sorted(set(obj) - set(fields))
        if unknown:
            raise ProofBundleError(f"proof bundle has unknown field(s): {', '.join(unknown)}")
        bundle = cls(
            commitment=_hash(obj, "commitment"),
            root=_hash(obj, "root"),
            proof=decode_proof(obj["proof"]) if version == 2 else _proof_list(obj["proof"]),
            chain_id=_natural(obj, "chain_id"),
            contract=_address(obj["contract"]),
            transaction=_hash(obj, "transaction"),
            block_number=_natural(obj, "block_number"),
            block_hash=_hash(obj, "block_hash") if version == 1 else None,
        )
        if version == 1 and _hash(obj, "leaf") != bundle.leaf:
            raise ProofBundleError("proof bundle field leaf is not the leaf of its commitment")
        return bundle


def encode_proof(proof: Sequence[Hash32]) -> str:
    """A proof as one base64url string (no padding) of its nodes' bytes, leaf upwards."""
    return base64.urlsafe_b64encode(b"".join(proof)).rstrip(b"=").decode("ascii")


def decode_proof(value: object) -> tuple[Hash32, ...]:
    """The nodes of a proof that `encode_proof` wrote; ProofBundleError for anything else
    (another alphabet, padding, a length that is not whole nodes, more than 32 nodes)."""
    if not isinstance(value, str) or not _BASE64URL.fullmatch(value):
        raise ProofBundleError("proof bundle field proof must be a base64url string (no padding)")
    if len(value) > (MAX_PROOF_NODES * 32 * 4 + 2) // 3:
        raise ProofBundleError(f"proof bundle field proof holds more than {MAX_PROOF_NODES} nodes")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError:
        raise ProofBundleError("proof bundle field proof is not base64url") from None
    if len(raw) % 32 or encode_proof([Hash32(raw)] if raw else []) != value:
        raise ProofBundleError("proof bundle field proof must be whole 32-byte nodes")
    return tuple(Hash32(raw[i : i + 32]) for i in range(0, len(raw), 32))


def receipt_bundle(
    ledger: LedgerContract,
    commitment: Hash32,
    root: Hash32,
    proof: Sequence[Hash32],
    receipt: TxReceipt,
) -> ProofBundle:
    """The bundle of `commitment` from the receipt of the transaction that anchored it."""
    return ProofBundle(
        commitment=commitment,
        root=root,
        proof=tuple(proof),
        chain_id=ledger.chain.chain_id,
        contract=ledger.address,
        transaction=bytes(receipt["transactionHash"]),
        block_number=int(receipt["blockNumber"]),
    )


def stored_bundle(
    commitment: Hash32,
    anchoring: tuple[BatchRow, tuple[Hash32, ...]],
    *,
    chain_id: int,
    contract: str,
) -> ProofBundle:
    """The bundle for `commitment` from `Store.anchoring_of`'s answer (an anchored batch).

    ProofBundleError if the batch has no confirmed transaction yet.
    """
    batch, path = anchoring
    if batch.tx_hash is None or batch.block_number is None or batch.block_hash is None:
        raise ProofBundleError(
            f"the batch of {hex32(commitment)} is not anchored yet: no transaction recorded"
        )
    return ProofBundle(
        commitment=commitment,
        root=batch.root,
        proof=path,
        chain_id=chain_id,
        contract=contract,
        transaction=batch.tx_hash,
        block_number=batch.block_number,
    )


def _hash(obj: dict[str, Any], name: str) -> Hash32:
    value = obj[name]
    if not isinstance(value, str):
        raise ProofBundleError(f"proof bundle field {name} must be a 0x-hex string")
    try:
        return to_hash32(value)
    except LedgerError as exc:
        raise ProofBundleError(f"proof bundle field {name}: {exc}") from None


def _proof_list(value: object) -> tuple[Hash32, ...]:
    if not isinstance(value, list) or len(value) > MAX_PROOF_NODES:
        raise ProofBundleError(
            f"proof bundle field proof must be a list of at most {MAX_PROOF_NODES} 0x-hex hashes"
        )
    return tuple(_hash({"proof element": v}, "proof element") for v in value)


def _natural(obj: dict[str, Any], name: str) -> int:
    value = obj[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProofBundleError(f"proof bundle field {name} must be a non-negative integer")
    return value


def _address(value: object) -> str:
    if not isinstance(value, str) or not Web3.is_address(value):
        raise ProofBundleError("proof bundle field contract must be a 0x-hex address")
    return Web3.to_checksum_address(value)


@dataclass(frozen=True)
class Check:
    """One step of checking a bundle."""

    name: str
    ok: bool
    detail: str


@dataclass
class BundleReport:
    """The outcome of checking a bundle: every step, and whether all passed."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return bool(self.checks) and all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> bool:
        """Record a step; return whether it passed."""
        self.checks.append(Check(name, ok, detail))
        return ok

    def to_json_obj(self) -> dict[str, Any]:
        """The report as plain JSON."""
        return {
            "ok": self.ok,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


def check_bundle_offline(bundle: ProofBundle, report: BundleReport | None = None) -> BundleReport:
    """The checks that need no node: the proof folds the leaf into the root."""
    report = report or BundleReport()
    if bundle.single:
        report.add("merkle", not bundle.proof, "single anchor: no proof expected")
        return report
    try:
        folded = process_proof(bundle.leaf, bundle.proof)
    except MerkleError as exc:
        report.add("merkle", False, str(exc))
        return report
    report.add(
        "merkle",
        folded == bundle.root,
        "proof leads from the leaf to the root"
        if folded == bundle.root
        else "proof leads elsewhere",
    )
    return report


def checksum_address(value: str) -> str | None:
    """`value` as a checksummed address, or None when it is not a 0x-hex address."""
    return Web3.to_checksum_address(value) if Web3.is_address(value) else None


def runtime_code_check(chain: Chain, address: str) -> tuple[bool, bytes, bytes]:
    """Whether the code at `address` is exactly the committed artifact's runtime code:
    (same, deployed, expected). Anything else at the address (a forgery that emits the
    events and answers true to every view) is not our contract, whatever it says."""
    deployed = chain.code_at(address)
    expected = bytes.fromhex(load_artifact()["deployedBytecode"][2:])
    return deployed == expected, deployed, expected


def check_bundle(
    bundle: ProofBundle, chain: Chain, *, contract: str, chain_id: int
) -> BundleReport:
    """Check a bundle against a node and the auditor's own trust anchor.

    `contract` and `chain_id` are the deployment the auditor pinned from a source they trust
    (the department's published deployment), never the bundle's: a bundle that names another
    contract or chain fails. Then: the node's chain id, the code at the address is the
    committed artifact's, the anchoring transaction's block and event (whose department the
    bundle's commitment belongs to), the contract's isAnchored view for that department.
    """
    report = check_bundle_offline(bundle)
    pinned = Web3.to_checksum_address(contract)
    if not report.add(
        "trust anchor",
        bundle.chain_id == chain_id and bundle.contract == pinned,
        f"bundle names {bundle.contract} on chain {bundle.chain_id}; "
        f"you pinned {pinned} on chain {chain_id}",
    ):
        return report
    node_chain_id = chain.chain_id
    if not report.add(
        "chain",
        node_chain_id == bundle.chain_id,
        f"node chain id {node_chain_id}, bundle {bundle.chain_id}",
    ):
        return report
    same, deployed, expected = runtime_code_check(chain, bundle.contract)
    if not report.add(
        "contract",
        same,
        f"code at {bundle.contract} is the committed CommitmentLedger artifact's"
        if same
        else f"code at {bundle.contract} ({len(deployed)} bytes) is NOT the committed "
        f"CommitmentLedger artifact's ({len(expected)} bytes)",
    ):
        return report
    ledger = LedgerContract(chain, bundle.contract)
    department = _check_transaction(bundle, chain, ledger, report)
    if department is None:
        report.add("anchored", False, "no anchoring event names the department to ask for")
        return report
    anchored = ledger.is_anchored(department, bundle.commitment, bundle.root, bundle.proof)
    report.add(
        "anchored", anchored, f"the contract's isAnchored view for department {hex32(department)}"
    )
    return report


def _check_transaction(
    bundle: ProofBundle, chain: Chain, ledger: LedgerContract, report: BundleReport
) -> bytes | None:
    """The transaction, block and event checks; the department the event names, if found."""
    try:
        receipt = chain.w3.eth.get_transaction_receipt(HexBytes(bundle.transaction))
    except Exception:
        report.add(
            "transaction", False, f"no transaction {hex32(bundle.transaction)} on this chain"
        )
        return None
    block_hash = bytes(receipt["blockHash"])
    same_block = int(receipt["blockNumber"]) == bundle.block_number and (
        bundle.block_hash is None or block_hash == bytes(bundle.block_hash)
    )
    report.add(
        "block",
        same_block,
        f"transaction in block {receipt['blockNumber']} ({hex32(block_hash)}); "
        f"the bundle names block {bundle.block_number}",
    )
    event_name = "CommitmentAnchored" if bundle.single else "BatchAnchored"
    key, wanted = ("commitment", bundle.commitment) if bundle.single else ("root", bundle.root)
    try:
        events = getattr(ledger._contract.events, event_name)().process_receipt(receipt)
    except ChainError:
        events = ()
    found = [
        e for e in events if e["address"] == ledger.address and bytes(e["args"][key]) == wanted
    ]
    report.add("event", bool(found), f"{event_name} for {hex32(wanted)} in the transaction")
    depth = chain.block_number() - int(receipt["blockNumber"])
    report.add("confirmations", depth >= 0, f"{depth} blocks on top")
    return bytes(found[0]["args"]["department"]) if found else None
