"""The audit lookup over a real anvil node: the contract's answer asked in one batch, and
"unreachable", never a 5xx, once the node is gone."""

from __future__ import annotations

from pathlib import Path

from support.deployment import deploy
from support.service_world import anchored, open_service

from ledger import AnvilNode, Chain, hex32


def test_the_audit_lookup_says_unreachable_when_the_node_is_gone(
    anvil: AnvilNode, tmp_path: Path
) -> None:
    d = deploy(Chain.connect(anvil.url, kind="anvil"))
    world = open_service(tmp_path, d, rpc=anvil.url)
    try:
        [(digest, _)] = anchored(world)
        url = f"/v1/audit/commitments/{hex32(digest)}"
        body = world.client.get(url).json()
        assert body["on_chain"]["reachable"] is True
        assert body["on_chain"]["anchored"] is True
        assert body["on_chain"]["status"] is None  # the public is told no more than anchored
        assert (
            body["anchor"]["confirmations"]
            == d.chain.block_number() - (body["anchor"]["block_number"])
        )
        anvil.stop()
        response = world.client.get(url)
        assert response.status_code == 200, response.text
        gone = response.json()
        assert gone["on_chain"]["reachable"] is False
        assert gone["on_chain"]["anchored"] is None and gone["on_chain"]["status"] is None
        assert gone["anchor"]["confirmations"] is None
        assert gone["anchor"]["block_number"] == body["anchor"]["block_number"]  # the store's
    finally:
        world.context.close()
