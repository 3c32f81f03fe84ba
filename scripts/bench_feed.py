"""Feed figures for `scripts/bench.py --feed N`: confirmation-to-feed delay and pull rate.

On an anvil node that mines a block every `block_time` seconds, N commitments are anchored
and verified (50 outcomes a transaction, spread over blocks) while a feed follower runs
beside the engine (as the service's background task does, polling every 0.2 s). The delay
of a record is from the moment the block that gives its event the configured
confirmations appeared at the node (seen by a watcher polling every 10 ms) to the moment
the record was committed to the feed. Then the service, in a process of its own, serves the
feed over HTTP on loopback and a consumer pages through it with a feed token.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from typing import Any

import httpx

from api.demo import SOURCES, running_apart, sample_commitments
from ledger import (
    Anchorer,
    AnvilNode,
    Chain,
    Intake,
    SigningKey,
    Store,
    Vault,
    free_port,
    sign_commitment,
)
from verifier import HttpSource, default_catalog
from verifier.engine import Department, EngineConfig, engine_for
from verifier.feed import FeedFollower, FeedStore

HRSS = "BJ-HRSS"
FOLLOW_INTERVAL_S = 0.2  # the service's feed task interval when idle
WATCH_INTERVAL_S = 0.01
SPREAD = 50  # outcomes per transaction and per engine chunk: about one block per 50 records


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class BlockWatcher:
    """Records when each block number was first seen at the node."""

    def __init__(self, chain: Chain) -> None:
        self.chain = Chain(chain.w3, chain.kind, url=chain.url)
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> BlockWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _watch(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            head = self.chain.block_number()
            for number in range(max(self.seen, default=head - 1) + 1, head + 1):
                self.seen.setdefault(number, now)
            self._stop.wait(WATCH_INTERVAL_S)


def feed_figures(count: int, confirmations: int = 2, block_time: float = 1.0) -> dict[str, Any]:
    """Delay from confirmation to the feed (p50/p99) and records served per second on pull."""
    from bench import _deploy  # the benchmark's deployment step

    catalog = default_catalog()
    matters = catalog.intake_terms()
    applicant = SigningKey.generate("ed25519")
    documents = [
        sign_commitment(c, applicant).to_json_obj()
        for c in sample_commitments(count, seed=17, department=HRSS)
    ]
    folder = tempfile.mkdtemp(prefix="commitledger-bench-feed-")
    store_url = f"sqlite:///{folder}/ledger.db"
    store = Store(store_url)
    master = os.urandom(32)
    vault = Vault(master)
    intake = Intake(store, vault, matters)
    report_key = SigningKey.generate("ed25519")
    with AnvilNode(block_time=block_time) as node:
        chain = Chain.connect(node.url, kind="anvil")
        ledger, registrars, verifiers = _deploy(chain, [HRSS], verifiers=True)
        for start in range(0, count, 1000):
            intake.submit_many(documents[start : start + 1000])
        Anchorer(store, ledger, registrars).drain(600)
        follower_store = Store(store_url)
        follower = FeedFollower(
            follower_store,
            type(ledger)(Chain.connect(node.url, kind="anvil"), ledger.address),
            catalog,
            vault,
            {HRSS: report_key}.get,
            confirmations=confirmations,
        )
        follower.step()  # catch up with the anchoring events first
        stop = threading.Event()
        following = threading.Thread(
            target=follower.run, kwargs={"interval_s": FOLLOW_INTERVAL_S, "stop": stop}
        )
        with BlockWatcher(chain) as watcher, running_apart("bench-token") as url:
            following.start()
            sources = {n: HttpSource(n, url, "bench-token", max_concurrency=32) for n in SOURCES}
            engine = engine_for(
                Department(
                    HRSS, verifier=verifiers[HRSS], report_key=SigningKey.generate("ed25519")
                ),
                store=store,
                intake=intake,
                ledger=ledger,
                catalog=catalog,
                sources=sources,
                # Outcomes spread over many blocks, as a day of verification spreads them.
                config=EngineConfig(chunk=SPREAD, outcomes_per_transaction=SPREAD),
            )
            engine.run(date(2026, 11, 27))
            engine.close()
            feed = FeedStore(store)
            deadline = time.monotonic() + 60 + 4 * confirmations * block_time
            while feed.head() < count and time.monotonic() < deadline:
                time.sleep(0.05)
            stop.set()
            following.join(30)
            follower.close()
            seen = dict(watcher.seen)
        appended = feed.appended_at()
        blocks = {
            record_id: block
            for record_id, block in _record_blocks(feed).items()
            if record_id in appended
        }
    delays = [
        appended[record_id] - seen[block + confirmations]
        for record_id, block in blocks.items()
        if block + confirmations in seen
    ]
    pull = _pull_rate(store_url, folder, master)
    follower_store.close()
    store.close()
    return {
        "records": len(appended),
        "confirmations": confirmations,
        "block_time_s": block_time,
        "follow_interval_s": FOLLOW_INTERVAL_S,
        "delay_confirmed_to_feed_s": {
            "p50": round(statistics.median(delays), 3) if delays else None,
            "p99": round(_percentile(delays, 0.99), 3) if delays else None,
            "max": round(max(delays), 3) if delays else None,
            "measured": len(delays),
        },
        "pull": pull,
    }


def _record_blocks(feed: FeedStore) -> dict[str, int]:
    import json

    return {
        record["id"]: int(record["evidence"]["block"])
        for record in (json.loads(body) for _, body in feed.bodies())
    }


_SERVE = """
import sys, uvicorn
from api.service import Settings, create_app
uvicorn.run(create_app(Settings()), host="127.0.0.1", port=int(sys.argv[1]), log_config=None,
            access_log=False)
"""


def _pull_rate(store_url: str, folder: str, master: bytes) -> dict[str, Any]:
    """Records per second a consumer pulls from the service, run in a process of its own
    (as `commitledger serve` runs), with a feed token, through every page again and again."""
    from api.service import TokenStore

    store = Store(store_url)
    token = TokenStore(store).issue("FEED", "feed", scope="all").token
    store.close()
    port = free_port()
    # The feed's cursor key is sealed under the master key: the service needs the same one,
    # handed down in its environment (no clear key file at rest: those are refused).
    env = {
        **os.environ,
        "COMMITLEDGER_MASTER_KEY": "0x" + master.hex(),
        "COMMITLEDGER_STORE_URL": store_url,
        "COMMITLEDGER_DATA_DIR": folder,
        "COMMITLEDGER_DEPLOYMENT_FILE": f"{folder}/none.json",
        "COMMITLEDGER_FEED": "false",
        "COMMITLEDGER_ANCHORING": "false",
    }
    server = subprocess.Popen([sys.executable, "-c", _SERVE, str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    figures: dict[str, Any] = {}
    try:
        with httpx.Client() as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.get(f"{url}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.05)
            headers = {"Authorization": f"Bearer {token}"}
            for limit in (100, 1000):
                served = 0
                started = time.perf_counter()
                while time.perf_counter() - started < 5.0:
                    after: str | None = None
                    while True:
                        params: dict[str, Any] = {"limit": limit}
                        if after:
                            params["after"] = after
                        page = client.get(f"{url}/v1/feed", params=params, headers=headers)
                        if page.status_code != 200:
                            raise RuntimeError(
                                f"GET /v1/feed: {page.status_code} {page.text[:300]}"
                            )
                        body = page.json()
                        served += len(body["records"])
                        if not body["records"]:
                            break
                        after = body["next"]
                elapsed = time.perf_counter() - started
                figures[f"records_per_second_limit_{limit}"] = round(served / elapsed)
    finally:
        server.terminate()
        server.wait(10)
    return figures
