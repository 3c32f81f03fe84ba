"""Benchmarks: gas per commitment and end-to-end anchoring throughput, embedded chain and anvil.

`python scripts/bench.py --json` prints one JSON object of named figures. Not a test: speed
is measured here, never asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from api.demo import sample_commitments
from ledger import (
    REGISTRAR_ROLE,
    VERIFIER_ROLE,
    AnvilNode,
    Chain,
    LedgerContract,
    MerkleTree,
    SignedCommitment,
    SigningKey,
    department_id,
    keccak256,
    sign_commitment,
    verify_signed,
)

HRSS = "BJ-HRSS"


def _deploy(
    chain: Chain, departments: Iterable[str], *, verifiers: bool = False
) -> tuple[LedgerContract, dict[str, LocalAccount], dict[str, LocalAccount]]:
    """A funded ledger with a registrar (and, if asked, a verifier) per department."""
    names = list(departments)
    admin = Account.create()
    registrars = {name: Account.create() for name in names}
    checkers = {name: Account.create() for name in names} if verifiers else {}
    for account in (admin, *registrars.values(), *checkers.values()):
        chain.fund(account.address)
    ledger = LedgerContract.deploy(chain, admin)
    for role, accounts in ((REGISTRAR_ROLE, registrars), (VERIFIER_ROLE, checkers)):
        for name, account in accounts.items():
            ledger.grant_department_role(admin, role, account.address, department_id(name))
    return ledger, registrars, checkers


def _setup(chain: Chain) -> tuple[LedgerContract, LocalAccount]:
    ledger, registrars, _ = _deploy(chain, [HRSS])
    return ledger, registrars[HRSS]


@contextmanager
def _anvil_chain() -> Iterator[Chain]:
    with AnvilNode() as node:
        yield Chain.connect(node.url, kind="anvil")


def _embedded_chain() -> Iterator[Chain]:
    yield Chain.embedded()


CHAINS: dict[str, Callable[[], Any]] = {
    "embedded": contextmanager(_embedded_chain),
    "anvil": _anvil_chain,
}


def gas_figures(chain: Chain) -> dict[str, Any]:
    """Gas per commitment: one single anchor, and batches of 100, 1,000 and 10,000 leaves."""
    ledger, registrar = _setup(chain)
    single = [
        ledger.anchor(registrar, keccak256(f"single-{i}".encode())).gas_used for i in range(5)
    ]
    figures: dict[str, Any] = {"single_anchor_gas": max(single)}
    for size in (100, 1_000, 10_000):
        tree = MerkleTree.build([keccak256(f"{size}-{i}".encode()) for i in range(size)])
        gas = ledger.anchor_batch(registrar, tree.root, size).gas_used
        figures[f"batch_{size}_gas"] = gas
        figures[f"batch_{size}_gas_per_commitment"] = round(gas / size, 2)
    return figures


def _signed_documents(count: int) -> list[dict[str, Any]]:
    """Signed commitments as they arrive: plain JSON (signing is the applicant's work)."""
    key = SigningKey.generate("ed25519")
    return [sign_commitment(c, key).to_json_obj() for c in sample_commitments(count)]


def _verify_all(documents: list[SignedCommitment]) -> None:
    for document in documents:
        verify_signed(document)


def end_to_end(chain: Chain, incoming: list[dict[str, Any]]) -> dict[str, Any]:
    """Schema check, signature check, canonical form and hash, tree, transaction and receipt."""
    ledger, registrar = _setup(chain)
    seconds: dict[str, float] = {}

    def timed(step: str, work: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = work()
        seconds[step] = time.perf_counter() - started
        return result

    started = time.perf_counter()
    documents = timed("schema", lambda: [SignedCommitment.from_json_obj(o) for o in incoming])
    timed("signature", lambda: _verify_all(documents))
    hashes = timed("canonical_and_hash", lambda: [d.hash() for d in documents])
    tree = timed("tree", lambda: MerkleTree.build(hashes))
    timed("proofs", tree.proofs)
    timed("transaction_and_receipt", lambda: ledger.anchor_batch(registrar, tree.root, len(tree)))
    total = time.perf_counter() - started
    return {
        "commitments": len(incoming),
        "seconds": round(total, 3),
        "commitments_per_second": round(len(incoming) / total, 1),
        "share_of_time": {step: round(s / total, 3) for step, s in seconds.items()},
    }


def single_anchor_rate(chain: Chain, count: int) -> dict[str, Any]:
    """Single anchors per second, pipelined (all sent, then all receipts awaited)."""
    from ledger import anchor_singly

    ledger, registrar = _setup(chain)
    hashes = [keccak256(f"rate-{i}".encode()) for i in range(count)]
    started = time.perf_counter()
    anchor_singly(ledger, registrar, hashes)
    elapsed = time.perf_counter() - started
    return {"count": count, "anchors_per_second": round(count / elapsed, 1)}


def pipeline_figures(count: int, workers: int, profile: bool = False) -> dict[str, Any]:
    """Intake to anchored on anvil: `count` signed commitments arriving as fast as they can."""
    import cProfile
    import io
    import os
    import pstats
    import resource
    import tempfile
    import threading

    from ledger import Anchorer, Intake, PipelineConfig, Store, Vault
    from verifier import default_catalog

    raw = [json.dumps(d).encode() for d in _signed_documents(count)]
    matters = default_catalog().intake_terms()
    workdir = tempfile.mkdtemp(prefix="commitledger-bench-")
    store = Store(f"sqlite:///{workdir}/ledger.db")
    intake = Intake(store, Vault(os.urandom(32)), matters, workers=workers)
    with _anvil_chain() as chain:
        ledger, registrars, _ = _deploy(
            chain, sorted({terms.department for terms in matters.values()})
        )
        anchorer = Anchorer(store, ledger, registrars, PipelineConfig())
        stop = threading.Event()
        worker = threading.Thread(target=anchorer.run, args=(stop,), daemon=True)
        profiler = cProfile.Profile() if profile else None
        started = time.perf_counter()
        worker.start()
        if profiler:
            profiler.enable()
        # Documents arrive as bytes (an upload, a request body), as they would in service.
        chunks = (raw[i : i + 1000] for i in range(0, count, 1000))
        for _ in intake.submit_stream(chunks):
            pass
        if profiler:
            profiler.disable()
        intake_seconds = time.perf_counter() - started
        while store.status().anchored < count:
            time.sleep(0.05)
        total = time.perf_counter() - started
        stop.set()
        worker.join()
    intake.close()
    latencies = sorted(store.anchoring_latencies())
    figures: dict[str, Any] = {
        "commitments": count,
        "intake_workers": workers,
        "intake_per_second": round(count / intake_seconds, 1),
        "intake_to_anchored_per_second": round(count / total, 1),
        "ack_to_anchored_p50_s": round(latencies[len(latencies) // 2], 3),
        "ack_to_anchored_p99_s": round(latencies[int(len(latencies) * 0.99)], 3),
        "batches": len(store.batches_in("anchored")),
        "peak_memory_mib": round(
            (
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            )
            / 1024,
            1,
        ),
        "store_bytes_per_commitment": round((store.size_bytes() or 0) / count, 1),
    }
    if profiler:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(15)
        figures["profile_main_process"] = text.getvalue().splitlines()[:40]
    return figures


def _cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) of this process and of its live children, by role."""
    import os

    tick = os.sysconf("SC_CLK_TCK")

    def used(pid: int) -> float:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    seconds = {"main": used(os.getpid())}
    children: set[int] = set()
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as listed:
            children.update(int(pid) for pid in listed.read().split())
    for pid in sorted(children):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                command = cmdline.read()
            name = "workers"  # the engine's forked checking processes
            if b"anvil" in command:
                name = "anvil"
            elif b"sample_service" in command:
                name = "sample_service"
            seconds[name] = seconds.get(name, 0.0) + used(pid)
        except OSError:
            continue  # exited meanwhile
    return seconds


def verification_figures(count: int, profile: bool = False) -> dict[str, Any]:
    """Commitments verified per second against the HTTP sample service, outcomes on chain."""
    import cProfile
    import io
    import os
    import pstats
    import tempfile
    from datetime import date

    from api.demo import SOURCES, running_apart
    from ledger import Anchorer, Intake, Store, Vault
    from verifier import HttpSource, default_catalog
    from verifier.engine import Department, engine_for

    catalog = default_catalog()
    matters = catalog.intake_terms()
    key = SigningKey.generate("ed25519")
    documents = [
        sign_commitment(c, key).to_json_obj() for c in sample_commitments(count, department=HRSS)
    ]
    store = Store(f"sqlite:///{tempfile.mkdtemp(prefix='commitledger-bench-')}/ledger.db")
    intake = Intake(store, Vault(os.urandom(32)), matters)
    with _anvil_chain() as chain:
        ledger, registrars, verifiers = _deploy(chain, [HRSS], verifiers=True)
        for start in range(0, count, 1000):
            intake.submit_many(documents[start : start + 1000])
        Anchorer(store, ledger, registrars).drain(600)
        # Another department's system: in a process of its own, not taking the engine's CPU.
        with running_apart("bench-token") as url:
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
                workers=2,
            )
            profiler = cProfile.Profile() if profile else None
            cpu_before = _cpu_seconds()
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            summary = engine.run(date(2026, 11, 27))
            if profiler:
                profiler.disable()
            elapsed = time.perf_counter() - started
            cpu_after = _cpu_seconds()
            engine.close()
    cpu = {
        name: round(spent - cpu_before.get(name, 0.0), 2)
        for name, spent in cpu_after.items()
        if spent - cpu_before.get(name, 0.0) > 0.005
    }
    figures: dict[str, Any] = {
        "commitments": count,
        "seconds": round(elapsed, 2),
        "verified_per_second": round(count / elapsed, 1),
        "outcomes": dict(summary.outcomes),
        "transactions": summary.transactions,
        "transactions_per_1000_outcomes": round(1000 * summary.transactions / count, 2),
        "gas_per_1000_outcomes": round(1000 * summary.gas_used / count),
        # Less sensitive to the machine's load than the rate: CPU spent per commitment.
        "cpu_seconds": cpu,
        "cpu_ms_per_commitment": {
            "verifier": round(1000 * (cpu.get("main", 0.0) + cpu.get("workers", 0.0)) / count, 3),
            "anvil": round(1000 * cpu.get("anvil", 0.0) / count, 3),
            "sample_service": round(1000 * cpu.get("sample_service", 0.0) / count, 3),
        },
    }
    if profiler:
        for order in ("cumulative", "tottime"):
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats(order).print_stats(25)
            figures[f"profile_{order}"] = text.getvalue().splitlines()[:45]
    return figures


def consortium(count: int, say: Callable[[str], None]) -> dict[str, Any]:
    """Intake to anchored with one, two and three instances on one PostgreSQL (issue 18)."""
    from bench_consortium import consortium_figures

    say(f"[postgresql] intake to anchored, 1-3 instances, {count} commitments each ...")
    return consortium_figures(count)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--count", type=int, default=10_000, help="commitments end to end")
    parser.add_argument("--singles", type=int, default=500, help="single anchors for the rate")
    parser.add_argument("--chains", default="embedded,anvil", help="comma-separated chains")
    parser.add_argument("--pipeline", type=int, default=100_000, help="commitments, 0 to skip")
    parser.add_argument("--workers", type=int, default=2, help="intake checking processes")
    parser.add_argument("--profile", action="store_true", help="profile the hot paths")
    parser.add_argument("--skip-gas", action="store_true", help="skip gas and end-to-end figures")
    parser.add_argument("--verify", type=int, default=10_000, help="commitments verified, 0 skips")
    parser.add_argument("--feed", type=int, default=2_000, help="feed records, 0 skips")
    parser.add_argument(
        "--service", type=int, default=1_000_000, help="breach records served, 0 skips"
    )
    parser.add_argument(
        "--workbench",
        type=int,
        default=1_000_000,
        help="commitments under the work lists and statistics, 0 skips",
    )
    parser.add_argument(
        "--startup", type=int, default=5, help="runs of each command's start-up, 0 skips"
    )
    parser.add_argument(
        "--consortium",
        type=int,
        default=1_000,
        help="commitments through 1, 2 and 3 instances on PostgreSQL, 0 skips",
    )
    args = parser.parse_args()

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if not args.skip_gas:
        say(f"signing {args.count} sample commitments ...")
    incoming = [] if args.skip_gas else _signed_documents(args.count)
    report: dict[str, Any] = {}
    for name in [] if args.skip_gas else args.chains.split(","):
        say(f"[{name}] gas per commitment ...")
        with CHAINS[name]() as chain:
            figures = gas_figures(chain)
        say(f"[{name}] end to end, {args.count} commitments ...")
        with CHAINS[name]() as chain:
            figures["end_to_end"] = end_to_end(chain, incoming)
        say(f"[{name}] single anchors, {args.singles} ...")
        with CHAINS[name]() as chain:
            figures["single_anchors"] = single_anchor_rate(chain, args.singles)
        report[name] = figures
    if args.pipeline:
        say(f"[anvil] intake to anchored, {args.pipeline} commitments ...")
        report["pipeline"] = pipeline_figures(args.pipeline, args.workers, args.profile)
    if args.verify:
        say(f"[anvil] verification, {args.verify} commitments ...")
        report["verification"] = verification_figures(args.verify, args.profile)
    if args.feed:
        from bench_feed import feed_figures

        say(f"[anvil] credit feed, {args.feed} records ...")
        report["feed"] = feed_figures(args.feed)
    if args.service:
        from bench_service import service_figures

        say(f"[http] lookups and searches over {args.service} breach records ...")
        report["service"] = service_figures(args.service)
    if args.workbench:
        from bench_workbench import workbench_figures

        say(f"[http] work-list pages and statistics over {args.workbench} commitments ...")
        report["workbench"] = workbench_figures(args.workbench)
    if args.startup:
        from bench_startup import startup_figures

        say(f"[cli] start-up of `hash FILE` and `--help`, median of {args.startup} ...")
        report["startup"] = startup_figures(args.startup)
    if args.consortium:
        report["consortium"] = consortium(args.consortium, say)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name, figures in report.items():
            print(f"== {name}")
            print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
