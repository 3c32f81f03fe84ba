"""A service without the credit feed still follows the chain: its background task indexes
the confirmed events and takes up an outcome that another instance recorded with the
department's key, so the views show the chain's state."""

from __future__ import annotations

import time
from pathlib import Path

from support.deployment import deploy
from support.service_world import anchored, open_service

from api.service.feed_task import RECONCILE_TASK_NAME, BackgroundReconcile, register_feed
from ledger import AnvilNode, Chain, LedgerContract, Status, keccak256
from verifier.records import VerifierRecords


def test_without_the_feed_an_out_of_band_outcome_is_taken_up(
    anvil: AnvilNode, tmp_path: Path
) -> None:
    d = deploy(Chain.connect(anvil.url, kind="anvil"))
    world = open_service(tmp_path, d, rpc=anvil.url, feed=False)
    try:
        assert register_feed(world.context) is False
        assert RECONCILE_TASK_NAME in world.context.background.names()
        [(digest, _)] = anchored(world)
        anchoring = world.store.anchoring_of(digest)
        assert anchoring is not None
        # Another instance records the outcome with the department's verifier key.
        other = LedgerContract(Chain.connect(anvil.url, kind="anvil"), d.ledger.address)
        evidence = keccak256(b"another instance: kept")
        other.record_outcome(
            d.verifier, digest, Status.KEPT, evidence, anchoring[0].root, anchoring[1]
        )
        records = VerifierRecords(world.store)
        task = BackgroundReconcile(world.context)
        deadline = time.monotonic() + 30
        while True:
            task.step()
            verification = records.verification(digest)
            if verification is not None and verification.state == "kept":
                break
            assert time.monotonic() < deadline, "the outcome was not taken up"
        assert verification.evidence == evidence
    finally:
        world.context.close()
