"""`Chain.wait_mined` reads what `wait` reads (status, block, gas) straight off the node."""

from __future__ import annotations

import os
import time

import pytest
from support.deployment import Deployment, deploy

from ledger import ZERO_HASH, AnvilNode, Chain, Mined, TransactionTimeoutError, keccak256

pytestmark = pytest.mark.integration


def _anchor(d: Deployment, commitment: bytes, gas: int | None = None) -> bytes:
    return d.chain.submit(
        d.registrar, d.ledger.builder("anchor", commitment), abi=d.ledger.abi, gas=gas
    )


def test_a_success_reads_as_the_full_receipt_does(deployment: Deployment) -> None:
    tx_hash = _anchor(deployment, keccak256(b"wait-mined"))
    mined = deployment.chain.wait_mined(tx_hash, timeout=30)
    receipt = deployment.chain.wait(tx_hash, timeout=30)
    assert mined == Mined(1, int(receipt["blockNumber"]), int(receipt["gasUsed"]))
    assert mined.gas_used > 21_000


def test_a_revert_mined_with_fixed_gas_reads_as_status_zero(anvil: AnvilNode) -> None:
    d = deploy(Chain.connect(anvil.url, kind="anvil"))
    # With the gas given nothing is estimated, so the node mines the reverting call.
    tx_hash = _anchor(d, ZERO_HASH, gas=200_000)
    mined = d.chain.wait_mined(tx_hash, timeout=30)
    assert mined.status == 0
    assert mined.block_number == d.chain.block_number()


def test_a_hash_never_mined_times_out_after_the_deadline(anvil: AnvilNode) -> None:
    chain = Chain.connect(anvil.url, kind="anvil")
    never = os.urandom(32)
    started = time.monotonic()
    with pytest.raises(TransactionTimeoutError) as info:
        chain.wait_mined(never, timeout=0.5)
    assert time.monotonic() - started >= 0.4
    assert never.hex() in str(info.value)


def test_confirmations_are_waited_for(anvil: AnvilNode) -> None:
    chain = Chain.connect(anvil.url, kind="anvil", confirmations=2)
    sender = chain.w3.eth.accounts[0]
    tx_hash = bytes(chain.w3.eth.send_transaction({"from": sender, "to": sender, "value": 1}))
    with pytest.raises(TransactionTimeoutError, match="blocks deep"):
        chain.wait_mined(tx_hash, timeout=0.5)
    chain.w3.provider.make_request("anvil_mine", [2])  # type: ignore[arg-type]
    mined = chain.wait_mined(tx_hash, timeout=5)
    assert chain.block_number() >= mined.block_number + 2
