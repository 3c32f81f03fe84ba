"""Issue 16 on a real anvil node: a commitment whose matter has checks a person makes is
NEEDS_MANUAL on chain until the last is done, then KEPT (or MISMATCH for a failed on-site
inspection); sampling opens tasks only for the commitments its rule selects."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.method_world import (
    RATE,
    SAMPLED,
    SEED,
    TASKS,
    independent_selection,
    open_method_world,
    pick,
    report_of,
)
from support.verifier_world import DAY, World

from ledger import Chain, Status


@pytest.fixture
def world(tmp_path: Path, anvil_chain: Chain) -> Iterator[World]:
    with open_method_world(anvil_chain, tmp_path) as opened:
        yield opened


def test_tasks_hold_the_outcome_on_chain_until_done(world: World) -> None:
    passing, failing = world.commit(pick(world, "agree", TASKS), pick(world, "agree", TASKS))
    assert world.engine.run(DAY).outcomes == Counter({"needs_manual": 2})
    assert world.status(passing) == world.status(failing) == Status.NEEDS_MANUAL

    desk = world.engine.tasks
    for commitment, site in ((passing, "passed"), (failing, "failed")):
        desk.complete(commitment, "papers", "passed", "officer 7", "contract read", DAY)
        assert world.status(commitment) == Status.NEEDS_MANUAL  # one task still open
        desk.complete(commitment, "site_visit", site, "officer 7", "visited", DAY)
    assert world.status(passing) == Status.KEPT
    assert world.status(failing) == Status.MISMATCH
    results = {t["key"]: t["result"] for t in report_of(world.engine, failing).tasks()}
    assert results == {"site_visit": "failed", "papers": "passed"}
    # the evidence on chain is the signed report with the tasks' results
    recorded = world.engine.records.verification(passing)
    assert recorded is not None and recorded.evidence == report_of(world.engine, passing).evidence


def test_sampling_on_chain_matches_the_rule(world: World) -> None:
    hashes = world.commit(*(pick(world, "agree", SAMPLED) for _ in range(8)))
    world.engine.run(DAY)
    for commitment in hashes:
        chosen = independent_selection(commitment, SAMPLED, SEED, RATE)
        assert world.status(commitment) == (Status.NEEDS_MANUAL if chosen else Status.KEPT)
