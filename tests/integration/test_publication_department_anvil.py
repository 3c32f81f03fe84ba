"""Issue #12, nothing published under the wrong department, on a real anvil node: an
outcome recorded by one department on a commitment whose matter is another department's
is withheld from the feed and the breach registry, never signed by the recording
department, and reported (`FeedBuilder.withheld`, `feed check`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.verifier_world import DAY, HRSS, POINTS, SAMR, World, matters, open_world

from ledger import Acknowledgement, AnvilNode, Chain, Intake, SigningKey, Status, keccak256
from verifier.feed import FeedFollower, FeedStore, check_feed

pytestmark = pytest.mark.integration


@pytest.fixture
def world(tmp_path: Path, anvil: AnvilNode) -> Iterator[World]:
    with open_world(Chain.connect(anvil.url, kind="anvil"), tmp_path) as opened:
        yield opened


@pytest.fixture
def keys() -> dict[str, SigningKey]:
    return {HRSS: SigningKey.generate("ed25519"), SAMR: SigningKey.generate("ed25519")}


def _follow(world: World, keys: dict[str, SigningKey]) -> FeedFollower:
    """A feed follower that has indexed and built everything on chain now."""
    follower = FeedFollower(world.store, world.ledger, world.catalog, world.vault, keys.get)
    follower.step()
    return follower


def _served(world: World) -> list[dict[str, object]]:
    return [json.loads(body) for _, body in FeedStore(world.store).bodies()]


def _check(world: World, keys: dict[str, SigningKey]) -> list[tuple[str, str | None]]:
    report = check_feed(
        FeedStore(world.store),
        world.ledger,
        world.catalog,
        lambda department: keys[department].public_key_b64(),
    )
    return [(p.kind, p.record_id) for p in report.problems]


def test_another_departments_outcome_on_our_commitment_is_withheld_from_the_feed(
    world: World, keys: dict[str, SigningKey], caplog: pytest.LogCaptureFixture
) -> None:
    """SAMR's keys anchor an HRSS commitment singly and breach it (SAMR's own record of
    the hash): the feed serves HRSS's own outcome on it, never a record signed by SAMR, and
    no breach is published; the builder and `feed check` report the withheld event."""
    commitment, _ = world.commit_kind("agree")
    d = world.deployment
    d.ledger.anchor(d.other_registrar, commitment)
    d.ledger.record_outcome(d.other_verifier, commitment, Status.PROPOSED, keccak256(b"notice"))
    d.ledger.record_outcome(d.other_verifier, commitment, Status.BREACHED, keccak256(b"samr"))
    world.engine.run(DAY)  # HRSS's own outcome: kept
    assert world.status(commitment) is Status.KEPT

    with caplog.at_level(logging.WARNING, "commitledger.feed"):
        follower = _follow(world, keys)
    try:
        served = _served(world)
        assert [r["department_code"] for r in served] == [HRSS]
        assert served[0]["kind"] == "kept"
        withheld = sorted(follower.builder.withheld)
        assert len(withheld) == 2  # SAMR's Proposed (its notice) and its Breached
        for event in withheld:
            reason = follower.builder.withheld[event]
            assert f"recorded by {SAMR}, but matter {POINTS} is {HRSS}'s" in reason
            assert f"feed withholds event {event} of {SAMR}" in caplog.text
        assert world.engine.records.search_breaches(DAY).records == []
        assert sorted(_check(world, keys)) == [("withheld", event) for event in withheld]
        follower.step()  # built again: still withheld, still served once
        assert len(_served(world)) == 1
    finally:
        follower.close()


def test_a_breach_recorded_for_a_commitment_of_another_departments_matter_is_not_published(
    world: World, keys: dict[str, SigningKey], caplog: pytest.LogCaptureFixture
) -> None:
    """A store row whose matter is HRSS's was taken in for SAMR (an intake that mapped the
    matter to SAMR): SAMR anchors it in its own batch, and its person's decision breaches it
    on chain (its run refuses it: the anchor does not prove it under the matter's department).
    The breach is not published in the registry (nor is the applicant excluded), and the
    feed serves no record of it signed by SAMR; `feed check` lists it as withheld."""
    misfiled = world.pick("false", POINTS).model_copy(update={"department": SAMR})
    intake = Intake(world.store, world.vault, {**matters(world.catalog), POINTS: SAMR})
    [result] = intake.submit_many([world.sign(misfiled).to_json_obj()])
    assert isinstance(result, Acknowledgement), result
    commitment = result.hash
    world.anchor()
    stored = world.store.get(commitment)
    assert stored is not None and stored.department == SAMR
    market = world.new_engine(SAMR)

    with caplog.at_level(logging.WARNING, "commitledger.verifier"):
        market.decide(commitment, "false", DAY, "inspector", "on-site check: claim untrue")
        assert world.status(commitment) is Status.PROPOSED  # notified first (issue #14)
        world.publish(DAY, actions=market.actions)
    assert world.status(commitment) is Status.BREACHED  # SAMR's own record, on chain
    assert market.records.search_breaches(DAY).records == []
    assert not world.store.is_excluded(world.fingerprint(misfiled))
    assert f"recorded by {SAMR}, but matter {POINTS} is {HRSS}'s" in caplog.text

    follower = _follow(world, keys)
    try:
        assert [r for r in _served(world) if r["department_code"] == SAMR] == []
        # SAMR's Proposed (its notice) and its Breached: both withheld
        assert [kind for kind, _ in _check(world, keys)] == ["withheld", "withheld"]
    finally:
        follower.close()
