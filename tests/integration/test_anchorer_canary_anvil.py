"""The anchorer's canary reads recent blocks' hashes from anvil in one batched POST."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.deployment import deploy

from ledger import Anchorer, Chain, Store

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("anvil_binary")]


def test_block_hashes_in_one_batch_are_the_nodes_answers(
    anvil_chain: Chain, tmp_path: Path
) -> None:
    setup = deploy(anvil_chain)
    anchorer = Anchorer(Store(f"sqlite:///{tmp_path / 'ledger.db'}"), setup.ledger, {})
    head = anvil_chain.block_number()
    numbers = {0, 1, head // 2, head, head + 1, head + 100}
    found = anchorer._block_hashes(numbers)
    assert found == {number: anvil_chain.block_hash(number) for number in numbers}
    assert found[head + 1] is None
    assert all(isinstance(found[number], bytes) for number in (0, 1, head))
    assert anchorer._block_hashes(set()) == {}
