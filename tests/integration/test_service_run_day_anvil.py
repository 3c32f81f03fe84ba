"""A verification run over HTTP is dated the chain's day: the service refuses a run whose
day differs from the day of the blocks that would record it (the feed and the breach
records read that day), as the command line does."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import httpx
from support.dated_chain import DatedAnvil
from support.deployment import deploy
from support.service_keys import write_all_keys
from support.service_world import ServiceWorld, anchored, open_service

from ledger import Chain

CHAIN_DAY = date(2026, 11, 27)


def _run(world: ServiceWorld, today: date) -> httpx.Response:
    token = world.tokens["BJ-HRSS", "verifier"]
    return world.client.post(
        "/v1/verifications/run",
        json={"on": today.isoformat(), "all_manual": True},
        headers={"authorization": f"Bearer {token}"},
    )


def test_a_run_on_another_day_than_the_chains_is_refused(tmp_path: Path) -> None:
    node = DatedAnvil(CHAIN_DAY)
    node.start()
    try:
        d = deploy(Chain.connect(node.url, kind="anvil"))
        # This machine says a day later than the node: the run's records would disagree.
        write_all_keys(tmp_path / "keys", d)
        world = open_service(tmp_path, d, rpc=node.url, today=CHAIN_DAY + timedelta(days=1))
        try:
            anchored(world)
            response = _run(world, CHAIN_DAY + timedelta(days=1))
            assert response.status_code == 422, response.text
            assert "the chain would record this run on 2026-11-27" in response.json()["detail"]
            # The same run on the chain's day goes ahead.
            world.context.today = lambda: CHAIN_DAY
            response = _run(world, CHAIN_DAY)
            assert response.status_code == 200, response.text
        finally:
            world.context.close()
    finally:
        node.stop()
