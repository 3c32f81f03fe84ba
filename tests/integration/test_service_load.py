"""A bounded load on the service from a second process, over loopback: 2,000 requests on 20
connections at public search, a breach by id, an audit by hash and the lookup page. No 5xx,
no dropped connection, every refusal a proper 429 problem, and the service healthy after.
No timing is asserted."""

from __future__ import annotations

import asyncio
import importlib.util
import random
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

REQUESTS = 2_000
CONNECTIONS = 20
# Far fewer than REQUESTS may pass, however slowly the machine runs them: some must be refused.
BURST = 400
PER_SECOND = 5
PROBLEM = "application/problem+json"
RATE_LIMITED = "https://commitledger.example/problems/rate-limited"


def _bench_service() -> ModuleType:
    path = Path(__file__).parents[2] / "scripts" / "bench_service.py"
    spec = importlib.util.spec_from_file_location("bench_service", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_service", module)
    spec.loader.exec_module(module)
    return module


async def _fire(base_url: str, paths: list[str], total: int, connections: int) -> dict[str, Any]:
    """In the client process: `total` GETs over `connections` kept-alive connections."""
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    bad_refusals: list[str] = []
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(paths[i % len(paths)])
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            path = queue.get_nowait()
            try:
                response = await client.get(path)
            except httpx.HTTPError as exc:  # a dropped or refused connection, a timeout
                failures.append(f"{path}: {type(exc).__name__}")
                continue
            statuses[response.status_code] += 1
            if response.status_code == 429:
                body = response.json()
                if not (
                    response.headers["content-type"].startswith(PROBLEM)
                    and body.get("type") == RATE_LIMITED
                    and body.get("status") == 429
                    and response.headers.get("retry-after", "").isdigit()
                ):
                    bad_refusals.append(response.text[:200])

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60.0) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    return {
        "statuses": dict(statuses),
        "failures": failures,
        "bad_refusals": bad_refusals,
    }


def fire(base_url: str, paths: list[str], total: int, connections: int) -> dict[str, Any]:
    """The load, run in a process of its own."""
    return asyncio.run(_fire(base_url, paths, total, connections))


def test_a_bounded_load_gets_answers_refusals_as_problems_and_leaves_the_service_healthy(
    tmp_path: Path,
) -> None:
    bench = _bench_service()
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    filled = bench.fill(url, 3_000)
    rng = random.Random(3)
    paths = [
        *(f"/v1/breaches?name={name[2:6]}" for name in filled.names if name.startswith("北京")),
        *(f"/v1/breaches?department={d}&matter={m}" for m, d in filled.matters),
        "/v1/breaches?decided_from=2026-01-01&decided_to=2026-06-30&page=2",
        *(f"/v1/breaches/{record_id}" for record_id in filled.ids),
        *(f"/v1/audit/commitments/{digest}" for digest in filled.hashes),
        "/",
        "/?name=%E5%8C%97%E4%BA%AC",
    ]
    rng.shuffle(paths)
    env = {
        "COMMITLEDGER_DATA_DIR": str(tmp_path),
        "COMMITLEDGER_STORE_URL": url,
        "COMMITLEDGER_RATE_LIMIT_BURST": str(BURST),
        "COMMITLEDGER_RATE_LIMIT_PER_SECOND": str(PER_SECOND),
    }
    with (
        bench.running_service(env, workers=1) as (port, _pid),
        ProcessPoolExecutor(1, mp_context=get_context("spawn")) as client,
    ):
        base_url = f"http://127.0.0.1:{port}"
        result = client.submit(fire, base_url, paths, REQUESTS, CONNECTIONS).result()
        assert result["failures"] == []
        statuses = Counter({int(k): v for k, v in result["statuses"].items()})
        assert sum(statuses.values()) == REQUESTS
        assert not [s for s in statuses if s >= 500], statuses
        assert statuses[200] >= BURST // 2, statuses  # answers, not only refusals
        assert statuses[429] > 0, statuses
        assert set(statuses) <= {200, 404, 429}, statuses
        assert result["bad_refusals"] == []
        health = httpx.get(f"{base_url}/healthz", timeout=10.0)
        assert health.status_code == 200
        assert health.json() == {"status": "ok"}
