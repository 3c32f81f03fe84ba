"""`commitledger stats --check-chain` on a real anvil node: the outcome counters kept by the
store agree with a count rebuilt from the contract's events (exit 0), and a counter changed
behind the store's back is named (exit 1)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from support.cli import one_json
from support.feed_world import make_changes
from support.verifier_world import HRSS, POINTS, World, open_world
from typer.testing import CliRunner

from api.cli import app as cli_app
from ledger import AnvilNode, Chain
from verifier.records import StatsQuery, stat_counts

pytestmark = pytest.mark.integration


@pytest.fixture
def world(tmp_path: Path, anvil: AnvilNode) -> Iterator[World]:
    with open_world(Chain.connect(anvil.url, kind="anvil"), tmp_path) as opened:
        make_changes(opened)  # kept, mismatch, a breach repaired, needs-manual, a withdrawal
        yield opened


def stats(tmp_path: Path, world: World, *extra: str) -> tuple[int, dict[str, Any] | None, str]:
    """`stats` with --json and without: its exit code, JSON document and text."""
    deployment = tmp_path / "deployment.json"
    deployment.write_text(
        json.dumps(
            {
                "rpc": world.chain.url,
                "chain_id": world.chain.chain_id,
                "contract": world.ledger.address,
            }
        )
    )
    store = f"sqlite:///{world.db_path}"
    args = ["stats", "--deployment", str(deployment), "--store", store, *extra]
    result = CliRunner().invoke(cli_app, [*args, "--json"])
    human = CliRunner().invoke(cli_app, args)
    assert human.exit_code == result.exit_code, human.output
    document = one_json(result.stdout) if result.exit_code in (0, 1) else None
    return result.exit_code, document, human.output


def test_the_counters_agree_with_the_chain_until_one_is_changed(
    world: World, tmp_path: Path
) -> None:
    totals = StatsQuery(world.store).totals()
    assert any(matter == POINTS for _, matter, _ in totals)
    every: dict[str, int] = {}
    for (_, _, metric), n in totals.items():
        every[metric] = every.get(metric, 0) + n
    assert every["verified"] == 4  # kept, mismatch, false (proposed), needs-manual
    assert (every["withdrawn"], every["breach"], every["repair"], every["false"]) == (1, 1, 1, 1)

    code, clean, output = stats(tmp_path, world, "--check-chain")
    assert code == 0, output
    assert clean is not None and clean["ok"] is True and clean["differences"] == []
    assert clean["compared"] == len(totals) and clean["events"] >= 7
    assert "agree" in output.splitlines()[-1]

    with world.store.engine.begin() as connection:
        row = connection.execute(select(stat_counts).where(stat_counts.c.metric == "repair")).one()
        connection.execute(
            update(stat_counts)
            .where(
                stat_counts.c.department == row.department,
                stat_counts.c.matter_code == row.matter_code,
                stat_counts.c.day == row.day,
                stat_counts.c.metric == "repair",
            )
            .values(count=5)
        )
    code, found, output = stats(tmp_path, world, "--check-chain")
    assert code == 1, output
    assert found is not None and found["ok"] is False
    assert found["differences"] == [
        {
            "department": HRSS,
            "matter_code": row.matter_code,
            "metric": "repair",
            "counters": 5,
            "chain": 1,
        }
    ]
    assert f"{HRSS} {row.matter_code} repair: counters 5, chain events 1" in output
    assert "DISAGREE for 1" in output

    code, rebuilt, output = stats(tmp_path, world, "--rebuild")
    assert code == 0, output
    assert rebuilt is not None and rebuilt["ok"] is True
    assert "counted again" in output and "agree" in output.splitlines()[-1]
    assert StatsQuery(world.store).totals() == totals


def test_stats_prints_the_counts_and_refuses_a_bad_range(world: World, tmp_path: Path) -> None:
    code, shown, _ = stats(tmp_path, world, "--period", "month")
    assert code == 0 and shown is not None
    assert sum(row["counts"]["verified"] for row in shown["rows"]) == 4
    code, _, output = stats(tmp_path, world, "--start", "2020-01-01")
    assert code == 2 and "longer than 366 days" in output
