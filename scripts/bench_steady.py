"""Steady load (`bench.py --steady RATE --duration S`): an offered rate held for a duration.

Signed commitments are offered at RATE a second through the same path as the burst figure
(`bench.pipeline_figures`): an Intake with checking processes storing into SQLite, one
Anchorer thread sending batches to anvil. Each tick offers every commitment that is due by
then (at most `catch_up` ticks' worth at once), so a machine that cannot keep up falls
behind the schedule and the figures say so (`achieved_offer_per_second`,
`offer_to_ack_p99_s`) instead of quietly offering less. The backlog (pending, batched,
anchored) is sampled every `sample_every` seconds until every commitment is anchored.

Acknowledgement to anchored is the store's own measure (`Store.anchoring_latencies`: a
commitment's batch anchored, minus the time it was stored and acknowledged), the burst
figure's measure too. Not a test: speed is measured here, never asserted.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import Any

PERCENTILES = 100
"""The latency distribution is kept as its 0th to 100th percentiles (charts, comparisons)."""


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The value at `fraction` (0 to 1) of already sorted values (nearest rank, below)."""
    if not ordered:
        raise ValueError("no values")
    return float(ordered[min(len(ordered) - 1, int(len(ordered) * fraction))])


def distribution(values: Sequence[float]) -> list[float]:
    """The 0th to 100th percentiles of `values`, rounded to milliseconds."""
    ordered = sorted(values)
    if not ordered:
        return []
    return [round(percentile(ordered, p / PERCENTILES), 3) for p in range(PERCENTILES + 1)]


class BacklogSampler:
    """Samples `Store.status()` every `every` seconds in a thread of its own."""

    def __init__(self, store: Any, started: float, every: float = 0.5) -> None:
        self.store = store
        self.started = started
        self.every = every
        self.samples: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        """Note the backlog now."""
        at = time.perf_counter() - self.started  # when asked (the answer may take a while)
        status = self.store.status()
        self.samples.append(
            {
                "t": round(at, 2),
                "pending": status.pending,
                "batched": status.in_flight,
                "anchored": status.anchored,
            }
        )

    def _run(self) -> None:
        self.sample()
        while not self._stop.wait(self.every):
            self.sample()

    def __enter__(self) -> BacklogSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()  # the end: everything anchored (or the deadline passed)


def offer_steadily(
    submit: Any, raw: Sequence[bytes], rate: float, tick: float = 0.05, catch_up: int = 4
) -> list[tuple[float, float, int]]:
    """Offer `raw` at `rate` a second through `submit` (a list of documents -> results);
    per call, (when its oldest document was due, when it was acknowledged, how many), both
    in seconds from the start."""
    started = time.perf_counter()
    per_tick = max(1, round(rate * tick))
    offered = 0
    calls: list[tuple[float, float, int]] = []
    while offered < len(raw):
        now = time.perf_counter() - started
        due = min(len(raw), int(now * rate) + 1) - offered
        wanted = min(per_tick, len(raw) - offered)  # a tick's worth, or the rest
        if due < wanted:  # pacing the offer (not waiting on a result): until a tick is due
            time.sleep(max(0.0, (offered + wanted - 1) / rate - now))
            continue
        take = min(due, per_tick * catch_up)
        submit(raw[offered : offered + take])
        calls.append((offered / rate, time.perf_counter() - started, take))
        offered += take
    return calls


def steady_figures(
    rate: float,
    duration: float,
    workers: int = 2,
    batch_size: int = 1000,
    sample_every: float = 0.5,
) -> dict[str, Any]:
    """Offer `rate` commitments a second for `duration` seconds; the latencies and backlog."""
    from bench import _anvil_chain, _deploy, _signed_documents

    from ledger import Anchorer, Intake, PipelineConfig, Store, Vault
    from verifier import default_catalog

    count = max(1, int(rate * duration))
    raw = [json.dumps(d).encode() for d in _signed_documents(count)]
    matters = default_catalog().intake_terms()
    workdir = tempfile.mkdtemp(prefix="commitledger-bench-steady-")
    store = Store(f"sqlite:///{workdir}/ledger.db")
    intake = Intake(store, Vault(os.urandom(32)), matters, workers=workers)
    refused = 0

    def submit(documents: Sequence[bytes]) -> None:
        nonlocal refused
        refused += sum(1 for r in intake.submit_many(documents) if isinstance(r, Exception))

    with _anvil_chain() as chain:
        ledger, registrars, _ = _deploy(
            chain, sorted({terms.department for terms in matters.values()})
        )
        anchorer = Anchorer(store, ledger, registrars, PipelineConfig(batch_size=batch_size))
        stop = threading.Event()
        worker = threading.Thread(target=anchorer.run, args=(stop,), daemon=True)
        started = time.perf_counter()
        worker.start()
        with BacklogSampler(store, started, sample_every) as sampler:
            calls = offer_steadily(submit, raw, rate)
            offered_seconds = time.perf_counter() - started
            deadline = time.monotonic() + max(120.0, 4 * duration)
            while store.status().anchored < count - refused and time.monotonic() < deadline:
                time.sleep(0.05)
            total = time.perf_counter() - started
        stop.set()
        worker.join()
    intake.close()
    latencies = sorted(store.anchoring_latencies())
    lags = sorted(acked - due for due, acked, _ in calls)
    for sample in sampler.samples:  # offered by the schedule, not acknowledged yet
        due = min(count, int(sample["t"] * rate) + 1)
        sample["unacknowledged"] = max(0, due - sum(n for _, at, n in calls if at <= sample["t"]))
    achieved = count / offered_seconds
    figures: dict[str, Any] = {
        "offered_per_second": rate,
        "duration_s": duration,
        "commitments": count,
        "refused": refused,
        "anchored": len(latencies),
        "batch_size": batch_size,
        "intake_workers": workers,
        "achieved_offer_per_second": round(achieved, 1),
        "kept_up": achieved >= 0.98 * rate,
        "offer_to_ack_p50_s": round(percentile(lags, 0.5), 3),
        "offer_to_ack_p99_s": round(percentile(lags, 0.99), 3),
        "seconds_to_all_anchored": round(total, 2),
        "batches": len(store.batches_in("anchored")),
        "backlog_max": max((s["pending"] + s["batched"] for s in sampler.samples), default=0),
        "backlog": sampler.samples,
    }
    if latencies:
        figures.update(
            ack_to_anchored_p50_s=round(percentile(latencies, 0.5), 3),
            ack_to_anchored_p99_s=round(percentile(latencies, 0.99), 3),
            ack_to_anchored_max_s=round(latencies[-1], 3),
            ack_to_anchored_percentiles=distribution(latencies),
        )
    if not figures["kept_up"]:
        figures["note"] = (
            f"the machine offered {achieved:,.0f}/s, not {rate:,.0f}/s, while also checking "
            "and anchoring: the latencies are at the rate achieved"
        )
    return figures


if __name__ == "__main__":
    import sys

    rate = float(sys.argv[1]) if len(sys.argv) > 1 else 3000.0
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
    print(json.dumps(steady_figures(rate, seconds), indent=2))
