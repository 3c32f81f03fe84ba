"""Benchmarks: gas per commitment and end-to-end anchoring throughput, embedded chain and anvil.

`python scripts/bench.py --json` prints one JSON object of named figures. Not a test: speed
is measured here, never asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bench_goals
from eth_account import Account
from eth_account.signers.local import LocalAccount

from api.demo import sample_commitments
from ledger import (
    REGISTRAR_ROLE,
    VERIFIER_ROLE,
    AnvilNode,
    Chain,
    Hash32,
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


def proof_bundle_figures(chain: Chain, leaves: int = 100_000) -> dict[str, Any]:
    """The JSON size of a proof bundle of a `leaves`-leaf batch anchored on `chain`."""
    from ledger import ProofBundle

    ledger, registrar = _setup(chain)
    hashes = [keccak256(f"bundle-{i}".encode()) for i in range(leaves)]
    tree = MerkleTree.build(hashes)
    sent = ledger.anchor_batch(registrar, tree.root, leaves)

    def bundle(commitment: Hash32) -> ProofBundle:
        return ProofBundle(
            commitment=commitment,
            root=tree.root,
            proof=tuple(tree.proof(commitment)),
            chain_id=chain.chain_id,
            contract=ledger.address,
            transaction=sent.tx_hash,
            block_number=sent.block_number,
        )

    compact = (",", ":")  # JSON without spaces
    sizes = [
        len(json.dumps(bundle(h).to_json_obj(), separators=compact))
        for h in (hashes[0], hashes[leaves // 2], hashes[-1])
    ]
    return {"leaves": leaves, "proof_nodes": len(tree.proof(hashes[0])), "bytes": max(sizes)}


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


MEMORY_METHOD = "sum of PSS (RSS where smaps_rollup is unreadable) over the bench process and \
its descendants, sampled every 0.2 s"


def _process_memory_kib(pid: int) -> int:
    """One process's memory in KiB: its proportional set size (shared pages split among the
    processes sharing them), or its resident set size where smaps_rollup cannot be read."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _descendants(pid: int) -> set[int]:
    """The live processes below `pid`: its children (of every thread), theirs, and so on."""
    import os

    found: set[int] = set()
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue  # exited meanwhile
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as listed:
                    children = {int(child) for child in listed.read().split()}
            except OSError:
                continue
            pending.extend(children - found)
            found |= children
    return found


def tree_memory_mib(pid: int | None = None) -> float:
    """The memory of `pid` (this process by default) and all its descendants now, in MiB."""
    import os

    root = os.getpid() if pid is None else pid
    total = 0
    for member in [root, *sorted(_descendants(root))]:
        try:
            total += _process_memory_kib(member)
        except OSError:
            continue  # exited between listing and reading
    return total / 1024


class MemorySampler:
    """Peak of `tree_memory_mib` sampled in a background thread while the block runs.

    Summing ru_maxrss of self and RUSAGE_CHILDREN counts the parent twice (a forked child starts
    with its parent's peak); summing PSS samples counts each page once."""

    def __init__(self, interval: float = 0.2, pid: int | None = None) -> None:
        import threading

        self.interval = interval
        self.pid = pid
        self.peak_mib = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> float:
        """Take one sample now, keep the peak, and return the sample."""
        now = tree_memory_mib(self.pid)
        self.peak_mib = max(self.peak_mib, now)
        self.samples += 1
        return now

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()  # the state at the end counts too


def pipeline_figures(
    count: int, workers: int, profile: bool = False, batch_size: int = 1000
) -> dict[str, Any]:
    """Intake to anchored on anvil: `count` signed commitments arriving as fast as they can,
    in batches of at most `batch_size`."""
    import cProfile
    import io
    import os
    import pstats
    import resource
    import tempfile
    import threading

    from bench_steady import distribution

    from ledger import Anchorer, Intake, PipelineConfig, Store, Vault
    from verifier import default_catalog

    raw = [json.dumps(d).encode() for d in _signed_documents(count)]
    # the process with its input (interpreter, libraries, documents), measured as the peak is
    input_mib = tree_memory_mib()
    matters = default_catalog().intake_terms()
    workdir = tempfile.mkdtemp(prefix="commitledger-bench-")
    store = Store(f"sqlite:///{workdir}/ledger.db")
    with MemorySampler(interval=0.2) as sampler:
        intake = Intake(store, Vault(os.urandom(32)), matters, workers=workers)
        with _anvil_chain() as chain:
            ledger, registrars, _ = _deploy(
                chain, sorted({terms.department for terms in matters.values()})
            )
            anchorer = Anchorer(store, ledger, registrars, PipelineConfig(batch_size=batch_size))
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
            sampler.sample()  # anvil and the checking processes are still alive here
        intake.close()
    latencies = sorted(store.anchoring_latencies())
    # the old figure, kept for comparison: counts the parent twice (a fork inherits ru_maxrss)
    maxrss_sum_mib = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    ) / 1024
    figures: dict[str, Any] = {
        "commitments": count,
        "batch_size": batch_size,
        "intake_workers": workers,
        "intake_per_second": round(count / intake_seconds, 1),
        "intake_to_anchored_per_second": round(count / total, 1),
        "ack_to_anchored_p50_s": round(latencies[len(latencies) // 2], 3),
        "ack_to_anchored_p99_s": round(latencies[int(len(latencies) * 0.99)], 3),
        "ack_to_anchored_percentiles": distribution(latencies),
        "batches": len(store.batches_in("anchored")),
        # the peak of this process's and its children's (anvil, checking processes) memory
        "peak_memory_mib": round(sampler.peak_mib, 1),
        "input_memory_mib": round(input_mib, 1),
        "peak_memory_beyond_input_mib": round(sampler.peak_mib - input_mib, 1),
        "memory_method": MEMORY_METHOD,
        "memory_samples": sampler.samples,
        "maxrss_self_plus_children_mib": round(maxrss_sum_mib, 1),
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


def _thread_cpu_seconds() -> dict[int, tuple[str, float]]:
    """CPU seconds of each live thread of this process, with its role in the verification
    run: the main thread, the worker pool's result and feeder threads, to_thread's pool."""
    import os
    import threading

    tick = os.sysconf("SC_CLK_TCK")
    roles = {}
    for thread in threading.enumerate():
        kind = type(thread).__name__
        if thread is threading.main_thread():
            role = "main_thread"
        elif kind == "_ExecutorManagerThread":
            role = "worker_results"  # unpickles what the checking processes send back
        elif thread.name == "QueueFeederThread":
            role = "worker_feed"  # pickles what goes to them
        elif thread.name.startswith("asyncio"):
            role = "to_thread"
        else:
            role = thread.name
        roles[thread.native_id] = role
    found = {}
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        found[int(task)] = (
            roles.get(int(task), "other"),
            (int(fields[11]) + int(fields[12])) / tick,
        )
    return found


def _by_thread_role(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], process: float
) -> dict[str, float]:
    """CPU seconds of this process's threads between two snapshots, by role; what threads
    that ended meanwhile used (the data sources' loop) is the rest of `process`."""
    spent: dict[str, float] = {}
    for task, (role, seconds) in after.items():
        spent[role] = spent.get(role, 0.0) + seconds - before.get(task, (role, 0.0))[1]
    spent["ended_threads"] = process - sum(spent.values())  # the data sources' loop
    return {role: round(seconds, 2) for role, seconds in spent.items() if seconds > 0.005}


def verification_figures(count: int, profile: bool = False) -> dict[str, Any]:
    """Commitments verified per second against the HTTP sample service, outcomes on chain;
    the store in a temporary directory, removed afterwards."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="commitledger-bench-verify-") as workdir:
        return _verification_run(count, profile, workdir)


def _verification_run(count: int, profile: bool, workdir: str) -> dict[str, Any]:
    import cProfile
    import io
    import os
    import pstats
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
    store = Store(f"sqlite:///{workdir}/ledger.db")
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
            # The main thread's CPU time: its waits for the workers and the node are not cost.
            profiler = cProfile.Profile(time.thread_time) if profile else None
            if profiler:
                # The checking processes fork while it profiles: not they, their CPU is measured.
                os.register_at_fork(after_in_child=lambda: sys.setprofile(None))
            cpu_before, threads_before = _cpu_seconds(), _thread_cpu_seconds()
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            summary = engine.run(date(2026, 11, 27))
            if profiler:
                profiler.disable()
            elapsed = time.perf_counter() - started
            cpu_after, threads_after = _cpu_seconds(), _thread_cpu_seconds()
            engine.close()
    store.engine.dispose()
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
        # The main process's CPU by thread: where its share goes besides the main thread.
        "main_process_threads_cpu_seconds": _by_thread_role(
            threads_before, threads_after, cpu.get("main", 0.0)
        ),
    }
    if profiler:
        for order in ("cumulative", "tottime"):
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats(order).print_stats(40)
            figures[f"profile_main_thread_cpu_{order}"] = text.getvalue().splitlines()[:60]
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
    _harness_arguments(parser)
    args = _only(parser, parser.parse_args())

    said = [""]  # the last progress line: which section a failure was in

    def say(message: str) -> None:
        said[0] = message
        print(message, file=sys.stderr, flush=True)

    if args.from_run:  # a saved run instead of measuring: its goals, comparison, charts
        saved = bench_goals.load(args.from_run)
        saved["goals"] = bench_goals.evaluate(saved["figures"])  # by the goals as they are now
        return _finish(saved, args, say)
    meta = bench_goals.machine()
    report = bench_goals.Sections()  # notes the load average around each section
    failures = _measure(args, report, say, said)
    if failures:  # the sections that raised: the others' figures are still saved and drawn
        report["failed"] = failures
    _finish(bench_goals.document(meta, report), args, say)
    return 1 if "failed" in report else 0


def _measure(
    args: argparse.Namespace,
    report: bench_goals.Sections,
    say: Callable[[str], None],
    said: list[str],
) -> list[dict[str, str]]:
    """Run the sections asked for, storing each one's figures in `report` as it ends; a
    section that raises is noted (the list returned) and the next one runs."""
    failures: list[dict[str, str]] = []

    @contextmanager
    def guarded() -> Iterator[None]:
        report.begin()
        try:
            yield
        except Exception as error:
            where = traceback.extract_tb(error.__traceback__)[-1]
            failures.append(
                {
                    "during": said[0],
                    "error": "".join(traceback.format_exception_only(error)).strip(),
                    "at": f"{where.filename}:{where.lineno}",
                }
            )
            say(traceback.format_exc())

    with guarded():
        if not args.skip_gas:
            say(f"signing {args.count} sample commitments ...")
        incoming = [] if args.skip_gas else _signed_documents(args.count)
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
    with guarded():
        if args.proof_bundle:
            say(f"[anvil] proof bundle of a {args.proof_bundle}-leaf batch ...")
            with _anvil_chain() as chain:
                report["proof_bundle"] = proof_bundle_figures(chain, args.proof_bundle)
    with guarded():
        if args.pipeline:
            say(f"[anvil] intake to anchored, {args.pipeline} commitments ...")
            report["pipeline"] = pipeline_figures(args.pipeline, args.workers, args.profile)
    with guarded():
        if args.batch_sizes:
            sizes = [int(size) for size in args.batch_sizes.split(",")]
            say(f"[anvil] intake to anchored, {args.sweep_count} each, batch sizes {sizes} ...")
            report["batch_sizes"] = [
                pipeline_figures(args.sweep_count, args.workers, batch_size=size) for size in sizes
            ]
    with guarded():
        if args.steady:
            from bench_steady import steady_figures

            say(f"[anvil] steady load, {args.steady:g}/s offered for {args.duration:g} s ...")
            report["steady"] = steady_figures(args.steady, args.duration, args.workers)
    with guarded():
        if args.verify:
            say(f"[anvil] verification, {args.verify} commitments ...")
            report["verification"] = verification_figures(args.verify, args.profile)
    with guarded():
        if args.feed:
            from bench_feed import feed_figures

            say(f"[anvil] credit feed, {args.feed} records ...")
            report["feed"] = feed_figures(args.feed)
    with guarded():
        if args.service:
            from bench_service import service_figures

            say(f"[http] lookups and searches over {args.service} breach records ...")
            report["service"] = service_figures(args.service)
    with guarded():
        if args.workbench:
            from bench_workbench import workbench_figures

            say(f"[http] work-list pages and statistics over {args.workbench} commitments ...")
            report["workbench"] = workbench_figures(args.workbench)
    with guarded():
        if args.startup:
            from bench_startup import startup_figures

            say(f"[cli] start-up of `hash FILE` and `--help`, median of {args.startup} ...")
            report["startup"] = startup_figures(args.startup)
    with guarded():
        if args.consortium:
            report["consortium"] = consortium(args.consortium, say)
    return failures


def _harness_arguments(parser: argparse.ArgumentParser) -> None:
    """The steady load, the batch-size sweep, the proof bundle, and saving, comparing and
    drawing a run."""
    parser.add_argument(
        "--steady", type=float, default=3_000, help="commitments a second offered steadily, 0 skips"
    )
    parser.add_argument("--duration", type=float, default=20, help="seconds of steady load")
    parser.add_argument(
        "--batch-sizes",
        default="250,500,1000,2000,4000",
        help="batch sizes of the throughput sweep, comma-separated, empty skips",
    )
    parser.add_argument(
        "--sweep-count", type=int, default=20_000, help="commitments per batch size of the sweep"
    )
    parser.add_argument(
        "--proof-bundle", type=int, default=100_000, help="leaves of the proof bundle, 0 skips"
    )
    parser.add_argument(
        "--only", metavar="SECTIONS", help=f"run these sections alone: {', '.join(SECTIONS)}"
    )
    parser.add_argument("--save", type=Path, metavar="FILE", help="save the run as JSON")
    parser.add_argument(
        "--compare", type=Path, metavar="FILE", help="compare the run with a saved one"
    )
    parser.add_argument("--charts", type=Path, metavar="DIR", help="draw the charts (SVG) here")
    parser.add_argument(
        "--from",
        dest="from_run",
        type=Path,
        metavar="FILE",
        help="measure nothing: print, compare and draw a saved run",
    )


SECTIONS = {  # --only's names: the argument that skips each section, and its "skip" value
    "gas": ("skip_gas", True),  # gas, end to end and single anchors, per chain
    "proof_bundle": ("proof_bundle", 0),
    "pipeline": ("pipeline", 0),
    "batch_sizes": ("batch_sizes", ""),
    "steady": ("steady", 0),
    "verification": ("verify", 0),
    "feed": ("feed", 0),
    "service": ("service", 0),
    "workbench": ("workbench", 0),
    "startup": ("startup", 0),
    "consortium": ("consortium", 0),
}


def _only(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """With `--only A,B`, every other section skipped (their counts as given otherwise)."""
    if args.only is None:
        return args
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = wanted - SECTIONS.keys()
    if unknown:
        parser.error(f"--only: no section {', '.join(sorted(unknown))} ({', '.join(SECTIONS)})")
    for name, (dest, skip) in SECTIONS.items():
        if name not in wanted:
            setattr(args, dest, skip)
    return args


def _brief(figures: Any) -> Any:
    """Figures to print: a long series (a distribution, a backlog) by its length only."""
    if isinstance(figures, dict):
        return {key: _brief(value) for key, value in figures.items()}
    if isinstance(figures, list):
        if len(figures) > 8:
            return f"{len(figures)} values (in the JSON: --save FILE or --json)"
        return [_brief(value) for value in figures]
    return figures


def _finish(run: dict[str, Any], args: argparse.Namespace, say: Callable[[str], None]) -> int:
    """Save, draw and print the run, with its goals and the comparison asked for."""
    from bench_charts import write_charts

    if args.save:
        bench_goals.save(run, args.save)
        say(f"saved {args.save}")
    if args.charts:
        for path in write_charts(run, args.charts):
            say(f"drew {path}")
    compared = bench_goals.compare(bench_goals.load(args.compare), run) if args.compare else None
    if args.json:
        if compared is not None:
            run = {**run, "compared_with": str(args.compare), "comparison": compared}
        print(json.dumps(run, indent=2))
        return 0
    for name, figures in run["figures"].items():
        load = run["load_average"].get(name)
        print(f"== {name}" + (f"  (load average {load['start']} -> {load['end']})" if load else ""))
        print(json.dumps(_brief(figures), indent=2))
    meta = run["meta"]
    print(f"== goals  (commit {meta['commit'][:12]}, {meta['cores']} cores, {meta['cpu']})")
    print("\n".join(bench_goals.goal_lines(run["goals"])) or "(no figure with a goal measured)")
    if compared is not None:
        print(f"== compared with {args.compare}")
        print("\n".join(bench_goals.compare_lines(compared)) or "(no goal figure in both runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
