"""What a Chain connected to anvil asks the node: its chain id once, not at every check."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from support.deployment import HRSS_ID, deploy
from web3.exceptions import Web3ValidationError

from ledger import Chain, keccak256

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("anvil_binary")]


def test_the_chain_id_is_asked_once_and_still_checked(anvil_chain: Chain) -> None:
    setup = deploy(anvil_chain)
    provider: Any = anvil_chain.w3.provider
    sent: Counter[str] = Counter()
    send = provider._make_request

    def counting(method: str, request_data: bytes) -> bytes:
        sent[method] += 1
        return send(method, request_data)  # type: ignore[no-any-return]

    provider._make_request = counting
    for n in range(3):
        setup.ledger.anchor_batch(setup.registrar, keccak256(b"root %d" % n), 5)
        assert setup.ledger.batch_of(HRSS_ID, keccak256(b"root %d" % n)).size == 5
    assert sent["eth_estimateGas"] >= 3 and sent["eth_call"] >= 3
    assert sent["eth_chainId"] <= 1
    # the validation middleware still compares a transaction's chain id with the node's
    tx = {"from": setup.registrar.address, "to": setup.registrar.address, "chainId": 1}
    with pytest.raises(Web3ValidationError, match="declared chain ID 1, but the connected node"):
        anvil_chain.w3.eth.estimate_gas(tx)  # type: ignore[arg-type]
