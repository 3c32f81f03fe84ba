"""Anchors signed commitments: check every signature, hash, build the tree, send, make bundles."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes

from ledger.contract import ZERO_HASH, LedgerContract
from ledger.documents import SignedCommitment
from ledger.merkle import MerkleTree
from ledger.proofs import ProofBundle, receipt_bundle
from ledger.signing import verify_signed
from ledger.types import Hash32

Progress = Callable[[int], None]


@dataclass(frozen=True)
class AnchorReceipt:
    """One anchoring transaction and the bundles of the commitments it anchored."""

    root: Hash32
    tx_hash: bytes
    block_number: int
    gas_used: int
    bundles: tuple[ProofBundle, ...]


def check_and_hash(
    commitments: Sequence[SignedCommitment], progress: Progress | None = None
) -> list[Hash32]:
    """Verify every signature (SignatureError on the first bad one) and return the hashes.

    Nothing is sent before all pass, so a bad document never half-anchors a batch.
    """
    hashes: list[Hash32] = []
    for signed in commitments:
        verify_signed(signed)
        hashes.append(signed.hash())
        if progress:
            progress(1)
    return hashes


def anchor_batch(
    ledger: LedgerContract, registrar: LocalAccount, hashes: Sequence[Hash32]
) -> AnchorReceipt:
    """Anchor distinct commitment hashes as one Merkle batch (one transaction)."""
    tree = MerkleTree.build(hashes)
    sent = ledger.anchor_batch(registrar, tree.root, len(tree))
    receipt = ledger.chain.w3.eth.get_transaction_receipt(HexBytes(sent.tx_hash))
    proofs = tree.proofs()
    bundles = tuple(receipt_bundle(ledger, h, tree.root, proofs[h], receipt) for h in hashes)
    return AnchorReceipt(tree.root, sent.tx_hash, sent.block_number, sent.gas_used, bundles)


def anchor_singly(
    ledger: LedgerContract,
    registrar: LocalAccount,
    hashes: Sequence[Hash32],
    progress: Progress | None = None,
    on_receipt: Callable[[AnchorReceipt], None] | None = None,
) -> list[AnchorReceipt]:
    """Anchor each hash in its own transaction, pipelined: all sent, then all awaited.

    Every transaction is built (gas-estimated) before any is sent, so a refused hash
    (AlreadyAnchored, a missing role) stops the whole set with nothing anchored. `on_receipt`
    sees each anchor as it is confirmed, so a caller keeps the proofs of those that landed
    even if the node fails half way.
    """
    chain = ledger.chain
    prepared = [
        chain.prepare(registrar, ledger.builder("anchor", h), abi=ledger.abi) for h in hashes
    ]
    sent = [chain.send(registrar, tx, abi=ledger.abi) for tx in prepared]
    receipts: list[AnchorReceipt] = []
    for commitment, tx_hash in zip(hashes, sent, strict=True):
        receipt = chain.wait(tx_hash)
        bundle = receipt_bundle(ledger, commitment, ZERO_HASH, (), receipt)
        anchored = AnchorReceipt(
            ZERO_HASH, tx_hash, int(receipt["blockNumber"]), int(receipt["gasUsed"]), (bundle,)
        )
        receipts.append(anchored)
        if on_receipt:
            on_receipt(anchored)
        if progress:
            progress(1)
    return receipts
