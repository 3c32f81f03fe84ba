"""The verification engine on a real anvil node: a full run, a rerun, a peak, a crash."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from support.verifier_world import DAY, HRSS, World, open_world

from api.demo import planted, sample_commitments
from ledger import Chain, Hash32, Status, TransactionTimeoutError
from verifier.engine import EngineConfig

pytestmark = pytest.mark.integration


@pytest.fixture
def world(tmp_path: Path, anvil_chain: Chain) -> Iterator[World]:
    with open_world(anvil_chain, tmp_path) as opened:
        yield opened


def expected_outcomes(world: World, count: int, seed: int) -> tuple[list[Hash32], Counter[str]]:
    """Submit and anchor `count` sample commitments; their hashes and planted outcomes."""
    commitments = list(sample_commitments(count, seed=seed, department=HRSS))
    hashes = world.commit(*commitments)
    expected: Counter[str] = Counter()
    for commitment in commitments:
        matter = world.catalog.matter(commitment.matter_code)
        kind = planted(commitment.applicant.id_number)
        if kind == "agree":
            expected["kept"] += 1
        elif kind == "missing":
            expected["needs_manual"] += 1
        elif kind == "false" and any(spec.on_disagree == "false" for spec in matter.claims):
            expected["false"] += 1
        else:
            expected["mismatch"] += 1
    return hashes, expected


def published(world: World, on: date) -> int:
    return world.engine.records.search_breaches(on, department=HRSS).total


def test_five_hundred_commitments_on_anvil_are_recorded_once(world: World) -> None:
    hashes, expected = expected_outcomes(world, 500, seed=31)

    summary = world.engine.run(DAY)

    assert summary.examined == 500 and summary.recorded == 500
    assert summary.outcomes == expected
    assert summary.transactions <= math.ceil(500 / EngineConfig().outcomes_per_transaction)
    # the false ones proposed and notified: nothing published before the defence
    assert world.ledger.open_breaches() == 0 == published(world, DAY)
    assert summary.breaches == []
    recorded = world.events_of("OutcomeRecorded")
    assert all(recorded[h] == 1 for h in hashes) and len(recorded) == 500
    states = Counter(world.engine.records.states_of(hashes).values())
    assert states == Counter(
        {
            "kept": expected["kept"],
            "mismatch": expected["mismatch"],
            "manual": expected["needs_manual"],
            "proposed": expected["false"],
        }
    )

    rerun = world.engine.run(DAY)
    restarted = world.restarted().run(DAY)

    for again in (rerun, restarted):
        assert again.examined == 0 and again.recorded == 0 and again.transactions == 0
    assert world.events_of("OutcomeRecorded") == recorded
    assert world.ledger.open_breaches() == published(world, DAY) == 0
    # published after the defence: each once
    world.publish(DAY, summary)
    assert world.ledger.open_breaches() == expected["false"] == published(world, DAY) > 0
    assert sorted(summary.breaches) == sorted(
        r.id for r in world.engine.records.search_breaches(DAY, page_size=100).records
    )
    assert world.publish(DAY) == []


def test_a_peak_of_two_thousand_verifies_in_one_run_in_few_transactions(world: World) -> None:
    hashes, expected = expected_outcomes(world, 2_000, seed=32)

    summary = world.engine.run(DAY)

    per_transaction = EngineConfig().outcomes_per_transaction
    assert summary.examined == 2_000 and summary.recorded == 2_000
    assert summary.outcomes == expected
    assert summary.transactions <= math.ceil(2_000 / per_transaction)
    assert world.engine.records.due(date.max, HRSS, 10) == []
    recorded = world.events_of("OutcomeRecorded")
    assert all(recorded[h] == 1 for h in hashes) and len(recorded) == 2_000
    assert world.ledger.open_breaches() == 0 == published(world, DAY)  # proposed, notified
    assert world.engine.run(DAY).transactions == 0


def test_a_crash_after_the_broadcast_on_anvil_is_recovered_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashes, expected = expected_outcomes(world, 400, seed=33)
    wait = world.chain.wait_mined
    calls = 0

    def dies_on_the_second_receipt(tx_hash: bytes, timeout: float | None = None) -> object:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise TransactionTimeoutError("killed while waiting")
        return wait(tx_hash, timeout)

    monkeypatch.setattr(world.chain, "wait_mined", dies_on_the_second_receipt)
    with pytest.raises(TransactionTimeoutError):
        world.engine.run(DAY)
    assert world.engine.outbox.open(HRSS)  # sent, mined, not yet recorded

    recovered = world.restarted().run(DAY)

    # The first 300 were recorded before the crash, the last 100 are found mined.
    assert recovered.examined == 0 and recovered.transactions == 0
    assert len(recovered.breaches) == len(set(recovered.breaches))
    recorded = world.events_of("OutcomeRecorded")
    assert all(recorded[h] == 1 for h in hashes) and len(recorded) == 400
    assert world.engine.outbox.open(HRSS) == []
    assert world.ledger.open_breaches() == 0 == published(world, DAY)  # proposed, notified
    states = Counter(world.engine.records.states_of(hashes).values())
    assert states["proposed"] == expected["false"]
    assert all(world.status(h) != Status.NONE for h in hashes)
