"""The proof bundle of a commitment anchored by the pipeline, read back from the store."""

from __future__ import annotations

from ledger import ProofBundle
from ledger.store import BatchRow
from ledger.types import Hash32


def stored_bundle(
    commitment: Hash32,
    anchoring: tuple[BatchRow, tuple[Hash32, ...]],
    *,
    chain_id: int,
    contract: str,
) -> ProofBundle:
    """The bundle for `commitment` from `Store.anchoring_of`'s answer (an anchored batch)."""
    batch, path = anchoring
    assert batch.tx_hash is not None
    assert batch.block_number is not None
    assert batch.block_hash is not None
    return ProofBundle(
        commitment=commitment,
        root=batch.root,
        proof=path,
        chain_id=chain_id,
        contract=contract,
        transaction=batch.tx_hash,
        block_number=batch.block_number,
        block_hash=batch.block_hash,
    )
