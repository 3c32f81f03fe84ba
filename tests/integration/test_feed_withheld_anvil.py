"""Withheld events cannot stall the feed: an outcome another department recorded on a
commitment of this store is withheld for good (stored, listed for an operator) and is never
pending again, so a key holder who records many of them cannot fill the builder's window
ahead of the outcomes that must be published."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.verifier_world import DAY, SAMR, World, open_world

from ledger import AnvilNode, Chain, EventIndexer, SigningKey, Status, keccak256
from verifier.feed import FeedStore
from verifier.feed.builder import FeedBuilder

pytestmark = pytest.mark.integration


@pytest.fixture
def world(tmp_path: Path, anvil: AnvilNode) -> Iterator[World]:
    with open_world(Chain.connect(anvil.url, kind="anvil"), tmp_path) as opened:
        yield opened


def test_withheld_events_do_not_stall_a_small_builder_window(world: World) -> None:
    d = world.deployment
    squatted, _ = world.commit_kind("agree")
    d.ledger.anchor(d.other_registrar, squatted)  # SAMR's own record of HRSS's commitment
    for step, status in enumerate((Status.MISMATCH, Status.NEEDS_MANUAL, Status.KEPT)):
        d.ledger.record_outcome(d.other_verifier, squatted, status, keccak256(bytes([step])))
    world.engine.run(DAY)  # HRSS's own outcome comes after the three withheld ones
    EventIndexer(world.store, world.ledger).sync()

    keys = {code: SigningKey.generate("ed25519") for code in world.catalog.departments()}
    feed = FeedStore(world.store, world.vault)
    builder = FeedBuilder(feed, world.ledger, world.catalog, world.vault, keys.get, limit=2)
    for _ in range(4):  # a window of two: the first round sees only withheld events
        builder.build()
    served = [json.loads(body) for _, body in feed.bodies()]
    assert [r["department_code"] for r in served] == ["BJ-HRSS"]
    withheld = feed.withheld_events()
    assert len(withheld) == 3
    assert {department for _, department, _ in withheld} == {SAMR}
    # A new builder (another process) finds them withheld already: nothing pending again.
    again = FeedBuilder(feed, world.ledger, world.catalog, world.vault, keys.get, limit=2)
    assert again.build() == []
    assert len(feed.withheld_events()) == 3
