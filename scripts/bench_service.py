"""Figures of the HTTP service over a store of many breach records (`bench.py --service N`).

Fills a SQLite store with N breach records (and their anchored commitments) in bulk, starts
the service as a real uvicorn process on loopback, and measures from a second process
requests per second and p50/p99 latency of lookups by hash and of public searches. Not a
test: speed is measured here, never asserted.

Over 400 lines: a benchmark, not production code: the store fill, the service process and
each figure's load loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any
from urllib.parse import quote
from urllib.request import urlopen

import uvloop
from eth_account.signers.local import LocalAccount
from sqlalchemy import Connection, Table, insert

from ledger import (
    AnvilNode,
    Chain,
    Status,
    Store,
    batches,
    commitments,
    hex32,
    keccak256,
    make_uscc,
)
from verifier import BEIJING, BreachRecord, add_months, expired
from verifier.records import (
    NAME_INDEX_DDL,
    SEARCH_INDEXES,
    TRIGRAM,
    VerifierRecords,
    breach_records,
)
from verifier.records.stats import count_moves

# Beijing's fifth batch: 240 matters from 19 departments (DOMAIN.md).
DEPARTMENTS = (
    *("HRSS", "SAMR", "PSB", "EDU", "HEALTH", "HOUSING", "TRANSPORT", "ECOLOGY", "WATER"),
    *("CULTURE", "COMMERCE", "TAX", "FINANCE", "AGRICULTURE", "EMERGENCY", "CIVIL"),
    *("JUSTICE", "SPORT", "PLANNING"),
)
MATTERS_PER_DEPARTMENT = 13
SEVERITY_MONTHS = {"minor": 3, "general": 12, "serious": 36}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"  # noqa: E501
WORDS = "华信恒达中天金源鑫盛宏远东方博雅新锐智联安泰瑞丰嘉禾永昌德润明辉广和通宇泽君"
TRADES = ("科技", "商贸", "建筑工程", "餐饮管理", "物流", "医药", "教育咨询", "文化传媒")
HRSS = "BJ-HRSS"
# The bench's day: records are decided up to it, its lifecycle jobs ran up to it, and the
# searches' date ranges end on it. The service lists by its own today (Beijing): a record
# whose publication ended between the two is still published in the store, left out of
# the list at query time (7,231 on 2026-12-08, 11 days after).
ON = date(2026, 11, 27)
# The kept store's version ($BENCH_SERVICE_STORE): a store filled otherwise is not reused.
# 2: the publications that ended before ON expired, as the daily lifecycle job leaves them.
STORE_VERSION = 2


@dataclass
class Filled:
    """What the store holds: samples of keys the bench looks up and searches by."""

    count: int
    seconds: float
    published: int = 0  # listed on ON: published, publication not ended
    expired_by_lifecycle: int = 0  # ended before ON: expired as the daily job leaves them
    hashes: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    matters: list[tuple[str, str]] = field(default_factory=list)


def _matters() -> list[tuple[str, str, str, str]]:
    """(code, name, department, severity) of the synthetic catalogue."""
    severities = ("minor", "general", "general", "serious")
    return [
        (f"BJ-{d}-{n:04d}", f"{d} 审批事项 {n}", f"BJ-{d}", severities[n % 4])
        for d in DEPARTMENTS
        for n in range(1, MATTERS_PER_DEPARTMENT + 1)
    ]


def _party(rng: random.Random, serial: int) -> tuple[str, str, str]:
    """(kind, name as shown, code as shown): masked for persons, whole for organisations."""
    if rng.random() < 0.3:
        name = rng.choice(SURNAMES) + "*" * rng.choice((1, 2, 2))
        code = f"110{rng.randrange(100, 999)}" + "*" * 10 + f"{rng.randrange(100):02d}"
        return "person", name, code
    words = "".join(rng.choice(WORDS) for _ in range(rng.choice((2, 2, 3))))
    name = f"北京{words}{rng.choice(TRADES)}有限公司"
    return "organisation", name, make_uscc("110105", f"{serial:08d}")


def fill(
    store_url: str, count: int, *, seed: int = 6, chunk: int = 20_000, expire: bool = True
) -> Filled:
    """Bulk-insert `count` breach records, each with its commitment anchored in a batch:
    the store the service holds on ON after its daily jobs ran up to that day, i.e. each
    publication that ended before ON expired by the lifecycle's expiry on the day after its
    end (`expire=False`: left published, as if the service had never run its jobs)."""
    started = time.perf_counter()
    rng = random.Random(seed)  # noqa: S311 - synthetic records, reproducible
    store = Store(store_url)
    VerifierRecords(store)  # applies the verifier's migrations
    matters = _matters()
    filled = Filled(count, 0.0)
    batch_size = 1000
    expiries: dict[float, list[tuple[str, str, Status, Status]]] = {}
    try:
        with store.engine.begin() as connection:
            connection.execute(
                insert(batches),
                [
                    {
                        "id": b + 1,
                        "root": keccak256(b"bench-batch-%d" % b),
                        "size": batch_size,
                        "department": "BJ-HRSS",
                        "state": "anchored",
                        "created_at": 0.0,
                        "tx_hash": keccak256(b"bench-tx-%d" % b),
                        "attempts": 1,
                        "block_number": 100 + b,
                        "block_hash": keccak256(b"bench-block-%d" % b),
                        "anchored_at": 1.0,
                    }
                    for b in range(-(-count // batch_size))
                ],
            )
        _without_search_indexes(store)
        for start in range(0, count, chunk):
            rows, commitment_rows = [], []
            for serial in range(start, min(count, start + chunk)):
                row, commitment = _record(rng, serial, matters, batch_size)
                if row["status"] == "published" and row["publication_end"] < ON.isoformat():
                    if expire:
                        stamp = expire_as_lifecycle(row)
                        expiries.setdefault(stamp, []).append(_expiry_move(row))
                elif row["status"] == "published":
                    filled.published += 1
                rows.append(row)
                commitment_rows.append(commitment)
                if rng.random() < 2_000 / count:
                    filled.hashes.append(hex32(commitment["hash"]))
                    filled.ids.append(row["id"])
                    filled.names.append(row["party_name"])
                    filled.codes.append(row["party_code"])
                    filled.matters.append((row["matter_code"], row["department"]))
            with store.engine.begin() as connection:
                _insert_many(connection, commitments, commitment_rows)
                _insert_many(connection, breach_records, rows)
        with store.engine.begin() as connection:
            for stamp, moves in sorted(expiries.items()):  # each day's job counts its own
                count_moves(connection, moves, stamp)
        filled.expired_by_lifecycle = sum(len(moves) for moves in expiries.values())
        _restore_search_indexes(store)
        with store.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")  # the planner's statistics, as in production
    finally:
        store.close()
    filled.seconds = time.perf_counter() - started
    return filled


def _store_text(filled: Filled) -> str:
    """What the store holds, for the bench's printed figures (and the note)."""
    others = filled.count - filled.published - filled.expired_by_lifecycle
    return (
        f"{filled.count:,} breach records as the service holds them on {ON.isoformat()}, its "
        f"daily lifecycle jobs run up to that day (store version {STORE_VERSION}): "
        f"{filled.published:,} published and listed; {filled.expired_by_lifecycle:,} whose "
        "publication ended before that day expired as the lifecycle's expiry leaves them "
        "(status and public JSON expired, updated the day after the end, counted in the "
        f"statistics); {others:,} filled as repaired or expired"
    )


def lifecycle_run_at(day: date) -> float:
    """When the service's daily lifecycle job runs on `day`: at its start, Beijing time."""
    return datetime.combine(day, datetime.min.time(), BEIJING).astimezone(UTC).timestamp()


def expire_as_lifecycle(row: dict[str, Any]) -> float:
    """Expire a published `row` whose publication ended, in place, as the lifecycle job did
    on the day after its end (`DepartmentActions.close_expired`: the store's
    `update_breach_status(id, "expired", on)`): `verifier.breaches.expired` on the record,
    and the columns that call writes. Returns the job's time, when its move is counted."""
    day = date.fromisoformat(row["publication_end"]) + timedelta(days=1)
    record = expired(BreachRecord.from_json(row["public_json"]), day)
    stamp = lifecycle_run_at(day)
    row["public_json"] = json.dumps(record.to_public_json(), ensure_ascii=False)
    row["status"] = record.status
    row["updated_at"] = stamp
    return stamp


def _expiry_move(row: dict[str, Any]) -> tuple[str, str, Status, Status]:
    return (row["department"], row["matter_code"], Status.BREACHED, Status.EXPIRED)


def _without_search_indexes(store: Store) -> None:
    """Bulk load as a restore would: search indexes and the name index's triggers dropped
    (built once afterwards, several times cheaper than kept row by row)."""
    with store.engine.begin() as connection:
        for trigger in ("insert", "delete", "update"):
            connection.exec_driver_sql(f"DROP TRIGGER breach_names_{trigger}")
        for index in SEARCH_INDEXES:
            index.drop(connection)


def _restore_search_indexes(store: Store) -> None:
    with store.engine.begin() as connection:
        for index in SEARCH_INDEXES:
            index.create(connection)
        for statement in NAME_INDEX_DDL[1:]:  # the triggers, then the index rebuilt
            connection.exec_driver_sql(statement)


def _filled(path: Path, count: int) -> Filled:
    """A store of `count` records at `path`: filled anew, or copied from the one kept in
    $BENCH_SERVICE_STORE (a directory) by an earlier run, so that a figure can be taken
    again without minutes of filling."""
    kept = os.environ.get("BENCH_SERVICE_STORE")
    if not kept:
        return fill(f"sqlite:///{path}", count)
    store, filled = kept_store(Path(kept), count)
    shutil.copyfile(store, path)
    return filled


def kept_store(directory: Path, count: int) -> tuple[Path, Filled]:
    """The store of `count` records kept in `directory`, filled there first if absent
    (`python scripts/bench_service.py fill N`). Its files are named by STORE_VERSION: one
    an older fill left is never taken for this fill's store."""
    name = f"breaches-{count}-v{STORE_VERSION}"
    store, facts = directory / f"{name}.db", directory / f"{name}.json"
    if store.exists() and facts.exists():
        return store, Filled(**{**json.loads(facts.read_text()), "seconds": 0.0})
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / f"{name}.filling.db"  # a fill cut short is never taken as done
    for leftover in ("", "-wal", "-shm"):  # and its journal never read into the next one
        Path(f"{partial}{leftover}").unlink(missing_ok=True)
    filled = fill(f"sqlite:///{partial}", count)  # closed: its WAL is checkpointed
    partial.replace(store)
    facts.write_text(json.dumps(dataclasses.asdict(filled)))
    return store, filled


def _insert_many(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """The driver's own executemany (SQLite): a tenth of SQLAlchemy's cost per row."""
    names = list(rows[0])
    columns, marks = ", ".join(names), ", ".join("?" * len(names))
    statement = f"INSERT INTO {table.name} ({columns}) VALUES ({marks})"  # noqa: S608 - ours
    connection.exec_driver_sql(statement, [tuple(row[n] for n in names) for row in rows])


def _digest(text: bytes) -> bytes:
    # Synthetic hashes: BLAKE2b is several times cheaper than keccak for a million rows.
    return hashlib.blake2b(text, digest_size=32).digest()


def _record(
    rng: random.Random, serial: int, matters: Sequence[tuple[str, str, str, str]], batch: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    digest = _digest(b"bench-commitment-%d" % serial)
    code, matter_name, department, severity = rng.choice(matters)
    kind, name, party_code = _party(rng, serial)
    decided = ON - timedelta(days=rng.randrange(4 * 365))
    ends = add_months(decided, SEVERITY_MONTHS[severity])
    status = "published" if rng.random() < 0.95 else rng.choice(("repaired", "expired"))
    tx = _digest(b"bench-breach-tx-%d" % serial)
    record_id = "BR-" + digest.hex()[:16]
    block = 1000 + serial // 300
    public: dict[str, Any] = {
        "id": record_id,
        "commitment_hash": hex32(digest),
        "party_kind": kind,
        "party_name": name,
        "party_code": party_code,
        "matter_code": code,
        "matter_name": matter_name,
        "facts": "承诺内容与核查数据不符，逾期未补正",
        "decision": "撤销审批决定，记入失信记录",
        "document_number": f"京{department}承诺〔{decided.year}〕{serial:06d}号",
        "legal_basis": "《北京市优化营商环境条例》",
        "department": department,
        "department_name": f"{department} 部门",
        "decision_date": decided.isoformat(),
        "publication_end": ends.isoformat(),
        "severity": severity,
        "status": status,
        "evidence": {
            "chain_id": 31337,
            "contract": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            "transaction": hex32(tx),
            "block": block,
            "commitment_hash": hex32(digest),
        },
        "superseded_by": None,
        "repaired_on": ends.isoformat() if status == "repaired" else None,
    }
    row = {
        "id": record_id,
        "commitment_hash": digest,
        "applicant_fingerprint": _digest(b"bench-applicant-%d" % serial),
        "public_json": json.dumps(public, ensure_ascii=False),
        "status": status,
        "party_name": name,
        "party_code": party_code,
        "decision_date": public["decision_date"],
        "publication_end": public["publication_end"],
        "severity": severity,
        "department": department,
        "matter_code": code,
        "superseded_by": None,
        "repaired_on": public["repaired_on"],
        "chain_id": 31337,
        "tx_hash": tx,
        "block_number": block,
        "updated_at": 0.0,
    }
    commitment = {
        "id": serial + 1,
        "hash": digest,
        "code": f"110105{decided.strftime('%Y%m%d')}{serial % 1_000_000:06d}",
        "matter_code": code,
        "department": department,
        "applicant_fingerprint": row["applicant_fingerprint"],
        "received_at": 0.0,
        "state": "anchored",
        "batch_id": serial // batch + 1,
        "proof": b"".join(_digest(b"sibling-%d" % i) for i in range(10)),
        "sealed": b"\0" * 64,
        "wrapped_key": b"\0" * 40,
    }
    return row, commitment


# ---------------------------------------------------------------------- the service


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by process `pid` and its live children."""
    tick = os.sysconf("SC_CLK_TCK")

    def used(one: int) -> float:
        with open(f"/proc/{one}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    total = used(pid)
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as listed:
            for child in listed.read().split():
                try:
                    total += used(int(child))
                except OSError:
                    continue  # exited meanwhile
    return total


@contextmanager
def running_service(
    env: dict[str, str], workers: int, deadline: float = 60.0
) -> Iterator[tuple[int, int]]:
    """The service as `uvicorn --factory` on a free loopback port, until the block ends:
    its port and process id."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "api.service.app:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, env={**os.environ, **env})
    try:
        _wait_healthy(port, process, deadline)
        yield port, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if conn.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)  # polling towards a deadline, not waiting for luck
    raise RuntimeError("the service did not become healthy in time")


# ---------------------------------------------------------------------- the load


def post(path: str, body: bytes, token: str) -> bytes:
    """A raw HTTP/1.1 POST of a JSON body with a bearer token, for `measure`."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _connection(
    port: int, paths: Sequence[str | bytes], start: int, step: int, count: int, out: list[float]
) -> Counter[int]:
    statuses: Counter[int] = Counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for i in range(count):
            path = paths[(start + i * step) % len(paths)]
            began = time.perf_counter()
            if isinstance(path, bytes):  # a whole request, as `post` renders it
                writer.write(path)
            else:
                writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            out.append(time.perf_counter() - began)
            statuses[int(head[9:12])] += 1
    finally:
        writer.close()
    return statuses


async def _load(
    port: int, paths: Sequence[str | bytes], connections: int, total: int
) -> dict[str, Any]:
    latencies: list[float] = []
    per = total // connections
    began = time.perf_counter()
    counted = await asyncio.gather(
        *(_connection(port, paths, c, connections, per, latencies) for c in range(connections))
    )
    elapsed = time.perf_counter() - began
    statuses: Counter[int] = Counter()
    for part in counted:
        statuses.update(part)
    latencies.sort()
    return {
        "requests": len(latencies),
        "connections": connections,
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def measure(
    port: int, paths: Sequence[str | bytes], connections: int, total: int
) -> dict[str, Any]:
    """Send `total` requests over `connections` keep-alive connections; the figures, with
    the client's own CPU per request (it shares the cores with the service).

    A path is a GET; bytes are a whole request (see `post`). On uvloop, as the service
    runs: a quarter less of the client's CPU than asyncio's own loop."""
    began = time.process_time()
    found = uvloop.run(_load(port, paths, connections, total))
    used = time.process_time() - began
    found["client_cpu_ms_per_request"] = round(used * 1000 / max(1, found["requests"]), 3)
    return found


def node_pid() -> int | None:
    """The anvil node this process started (`deployed`), if one runs."""
    me = os.getpid()
    for task in os.listdir(f"/proc/{me}/task"):
        with open(f"/proc/{me}/task/{task}/children") as listed:
            for child in listed.read().split():
                try:
                    with open(f"/proc/{child}/comm") as comm:
                        if comm.read().strip() == "anvil":
                            return int(child)
                except OSError:
                    continue  # exited meanwhile
    return None


# ---------------------------------------------------------------------- /healthz under attack

BODY_LIMIT = 256 * 1024  # the service's default max_body_bytes


def adversarial_body(limit: int = BODY_LIMIT) -> bytes:
    """Finding 1's shape at the size limit: brackets, then escaped quotes to the end (the old
    depth check's regex took ~20 minutes over it, on the event loop)."""
    return b"[" * 300 + b'\\"' * ((limit - 300) // 2)


async def _adversary(port: int, stop: Any) -> Counter[int]:
    body = adversarial_body()
    request = post("/v1/audit/documents", body, "none").replace(
        b"Authorization: Bearer none\r\n", b""
    )
    statuses: Counter[int] = Counter()
    while not stop.is_set():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            statuses[int(head[9:12])] += 1
        finally:
            writer.close()
    return statuses


async def _adversaries(port: int, count: int, started: Any, stop: Any) -> dict[str, Any]:
    began = time.perf_counter()
    attacks = [asyncio.create_task(_adversary(port, stop)) for _ in range(count)]
    started.set()
    refused: Counter[int] = Counter()
    for part in await asyncio.gather(*attacks):
        refused.update(part)
    elapsed = time.perf_counter() - began
    return {
        "adversarial_bodies": sum(refused.values()),
        "adversarial_per_second": round(sum(refused.values()) / elapsed, 1),
        "adversarial_statuses": {str(k): v for k, v in sorted(refused.items())},
    }


def send_adversarial(port: int, count: int, started: Any, stop: Any) -> dict[str, Any]:
    """`count` clients sending adversarial bodies at the size limit to POST
    /v1/audit/documents (no token), one after another, until `stop` is set."""
    return asyncio.run(_adversaries(port, count, started, stop))


async def _healthz(port: int, requests: int) -> dict[str, Any]:
    latencies: list[float] = []
    statuses = await _connection(port, ["/healthz"], 0, 1, requests, latencies)
    latencies.sort()
    return {
        "requests": len(latencies),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def measure_healthz(port: int, requests: int) -> dict[str, Any]:
    """`/healthz` p50/p99 over one keep-alive connection."""
    return asyncio.run(_healthz(port, requests))


def healthz_figures(requests: int = 2_000, adversaries: int = 4) -> dict[str, Any]:
    """`/healthz` latency alone and beside `adversaries` clients of adversarial bodies, on one
    uvicorn worker (one event loop): the goal is a p99 under 50 ms either way."""
    with tempfile.TemporaryDirectory(prefix="bench-healthz-") as directory:
        env = {
            "COMMITLEDGER_DATA_DIR": directory,
            "COMMITLEDGER_STORE_URL": f"sqlite:///{Path(directory) / 'ledger.db'}",
            "COMMITLEDGER_RATE_LIMIT_BURST": "1000000",
            "COMMITLEDGER_RATE_LIMIT_PER_SECOND": "1000000",
            "COMMITLEDGER_FEED": "false",
        }
        spawn = get_context("spawn")
        with (
            running_service(env, workers=1) as (port, _pid),
            spawn.Manager() as manager,
            ProcessPoolExecutor(2, mp_context=spawn) as clients,  # one measures, one attacks
        ):
            clients.submit(measure_healthz, port, 200).result()  # warm up
            alone = clients.submit(measure_healthz, port, requests).result()
            started, stop = manager.Event(), manager.Event()
            attack = clients.submit(send_adversarial, port, adversaries, started, stop)
            started.wait(60)
            beside = clients.submit(measure_healthz, port, requests).result()
            stop.set()
            beside.update(attack.result())
    return {
        "body_bytes": len(adversarial_body()),
        "alone": alone,
        f"beside_{adversaries}_adversarial_clients": beside,
    }


# ---------------------------------------------------------------------- the chain


@contextmanager
def deployed(directory: Path) -> Iterator[LocalAccount]:
    """A ledger on a fresh anvil node, named in `directory`/deployment.json as `deploy`
    writes it (the service asks that node); yields BJ-HRSS's registrar account."""
    from bench import _deploy  # the bench's own deployment step

    with AnvilNode() as node:
        chain = Chain.connect(node.url, kind="anvil")
        ledger, registrars, _ = _deploy(chain, ["BJ-HRSS"])
        facts = {"rpc": node.url, "chain_id": chain.chain_id, "contract": ledger.address}
        (directory / "deployment.json").write_text(json.dumps({**facts, "department": "BJ-HRSS"}))
        yield registrars["BJ-HRSS"]


def submit_figures(count: int = 400, connections: int = 64) -> dict[str, Any]:
    """Submit-to-anchored latency through the API: POST /v1/commitments?wait=true from a
    second process, the service anchoring in the background on anvil."""
    from bench import _signed_documents

    from api.keyfiles import KeyUnlock, keystore_bytes
    from api.service import TokenStore
    from ledger import Vault

    documents = [d for d in _signed_documents(count * 2) if d["document"]["department"] == HRSS]
    bodies = [json.dumps(d, ensure_ascii=False).encode() for d in documents[:count]]
    with tempfile.TemporaryDirectory(prefix="bench-submit-") as name, deployed(Path(name)) as key:
        directory = Path(name)
        account = directory / "keys" / HRSS / "registrar.json"
        account.parent.mkdir(parents=True)
        passphrase = secrets.token_urlsafe(16)  # the instance takes encrypted keys only
        account.write_bytes(keystore_bytes(key, KeyUnlock(passphrase)))
        account.chmod(0o600)
        url = f"sqlite:///{directory / 'ledger.db'}"
        store = Store(url)
        token = TokenStore(store).issue(HRSS, "registrar").token
        store.close()
        env = {
            "COMMITLEDGER_DATA_DIR": name,
            "COMMITLEDGER_STORE_URL": url,
            "COMMITLEDGER_MASTER_KEY": Vault.new_master_key(),
            "COMMITLEDGER_FEED": "false",
            "COMMITLEDGER_KEY_PASSPHRASE": passphrase,
        }
        requests = [post("/v1/commitments?wait=true&timeout=60", b, token) for b in bodies]
        with (
            running_service(env, workers=1) as (port, _pid),
            ProcessPoolExecutor(1, mp_context=get_context("spawn")) as client,
        ):
            found = client.submit(measure, port, requests, connections, len(requests)).result()
    return {"submitted": len(bodies), **found}


# ---------------------------------------------------------------------- the figures


def _search_paths(filled: Filled, rng: random.Random) -> dict[str, list[str]]:
    def q(**params: object) -> str:
        return "/v1/breaches?" + "&".join(f"{k}={quote(str(v))}" for k, v in params.items())

    def some(values: Sequence[Any]) -> list[Any]:
        return [rng.choice(values) for _ in range(500)]

    months = [ON - timedelta(days=30 * m) for m in range(48)]
    # What people type: part of a company's name; a person's name as shown ("张**"). Shorter
    # terms are whole names or surnames only (see verifier.records.facade.TRIGRAM).
    terms = [n[2:6] if n.startswith("北京") else n for n in filled.names]
    return {
        "name": [q(name=t) for t in some([t for t in terms if len(t) >= TRIGRAM])],
        "credit_code": [q(credit_code=c) for c in some(filled.codes)],
        "matter_department": [q(matter=m, department=d) for m, d in some(filled.matters)],
        "date_range": [
            q(decided_from=d - timedelta(days=30), decided_to=d, page=rng.randrange(1, 6))
            for d in some(months)
        ],
    }


def service_figures(
    count: int, *, workers: int = 2, connections: int = 16, requests: int = 5_000
) -> dict[str, Any]:
    """Lookup by hash and public search, req/s and p50/p99, with `count` breach records;
    then submit-to-anchored and `/healthz` under adversarial bodies."""
    figures = lookup_figures(count, workers=workers, connections=connections, requests=requests)
    figures["submit_to_anchored"] = submit_figures()
    figures["healthz_under_adversarial_bodies"] = healthz_figures()
    return figures


def _node_answered(port: int, paths: Sequence[str]) -> str:
    """How many of these lookups found the node answering (`on_chain.reachable`): a lookup
    whose node read failed is cheaper, and would flatter the figure."""
    answered = 0
    for path in paths:
        with urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            answered += bool(json.loads(response.read())["on_chain"]["reachable"])
    return f"{answered} of {len(paths)}"


def lookup_figures(
    count: int,
    *,
    workers: int = 2,
    connections: int = 16,
    requests: int = 5_000,
    only: Sequence[str] = (),
) -> dict[str, Any]:
    """Lookup by hash and public search, req/s and p50/p99, with `count` breach records
    (`python scripts/bench_service.py lookups N`: these alone), and the load average."""
    rng = random.Random(11)  # noqa: S311 - which keys to ask for, reproducible
    with tempfile.TemporaryDirectory(prefix="bench-service-") as directory:
        url = f"sqlite:///{Path(directory) / 'ledger.db'}"
        filled = _filled(Path(directory) / "ledger.db", count)
        figures: dict[str, Any] = {
            "breach_records": count,
            "store": _store_text(filled),
            "fill_seconds": round(filled.seconds, 1),
            "workers": workers,
        }
        env = {
            "COMMITLEDGER_DATA_DIR": directory,
            "COMMITLEDGER_STORE_URL": url,
            "COMMITLEDGER_RATE_LIMIT_BURST": "1000000",
            "COMMITLEDGER_RATE_LIMIT_PER_SECOND": "1000000",
        }
        loads: dict[str, list[str]] = {
            "audit_by_hash": [f"/v1/audit/commitments/{h}" for h in filled.hashes],
            "breach_by_id": [f"/v1/breaches/{i}" for i in filled.ids],
            **{f"search_{k}": v for k, v in _search_paths(filled, rng).items()},
        }
        if only:  # some figures alone, by name ("audit_by_hash", "search_name", ...)
            loads = {k: v for k, v in loads.items() if k in only}
        with (
            deployed(Path(directory)),  # audit lookups ask the contract, as in production
            running_service(env, workers) as (port, pid),
            ProcessPoolExecutor(1, mp_context=get_context("spawn")) as client,
        ):
            for warm in ("breach_by_id", "audit_by_hash"):  # caches and kept-alive connections
                if warm in loads:
                    client.submit(measure, port, loads[warm], 4, 400).result()
            node = node_pid()
            for name, paths in loads.items():
                before = cpu_seconds(pid)
                node_before = None if node is None else cpu_seconds(node)
                found = client.submit(measure, port, paths, connections, requests).result()
                # Less sensitive to other load on the machine than the rate.
                found["service_cpu_ms_per_request"] = round(
                    (cpu_seconds(pid) - before) * 1000 / found["requests"], 3
                )
                if node is not None and node_before is not None and name == "audit_by_hash":
                    # The node's share: the lookup's three reads (the cores are shared).
                    found["node_cpu_ms_per_request"] = round(
                        (cpu_seconds(node) - node_before) * 1000 / found["requests"], 3
                    )
                found["load_average_1m"] = round(os.getloadavg()[0], 2)  # a shared machine
                figures[name] = found
            # The lookup at a load the two cores carry: 16 connections saturate them (anvil,
            # the client and both workers), and their p99 is then mostly queueing.
            if "audit_by_hash" in loads:
                figures["audit_by_hash_2_connections"] = client.submit(
                    measure, port, loads["audit_by_hash"], 2, 2_000
                ).result()
                figures["audit_by_hash"]["node_answered"] = _node_answered(
                    port, loads["audit_by_hash"][:50]
                )
        searches = [v for k, v in figures.items() if k.startswith("search_")]
        figures["audit_asks_chain"] = (
            "anvil: block number, statusOf, and isAnchored unless kept as final, per lookup, "
            "in one batched POST from the event loop (the bench's batches are not on the "
            "chain: isAnchored is asked every time)"
        )
        if searches:
            figures["searches_per_second"] = round(
                sum(s["requests"] for s in searches)
                / sum(s["requests"] / s["requests_per_second"] for s in searches),
                1,
            )
    figures["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return figures


if __name__ == "__main__":
    if sys.argv[1:2] == ["fill"]:  # fill the kept store alone: `fill [N]`
        count = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
        kept = Path(os.environ.get("BENCH_SERVICE_STORE") or "bench-service-store")
        _, made = kept_store(kept, count)
        print(json.dumps(_store_text(made)))
    elif sys.argv[1:] == ["healthz"]:  # that part alone: `python scripts/bench_service.py healthz`
        print(json.dumps(healthz_figures(), indent=2))
    elif sys.argv[1:2] == ["lookups"]:  # lookups and searches alone: `lookups [N [NAMES]]`
        count = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
        only = sys.argv[3].split(",") if len(sys.argv) > 3 else ()  # e.g. audit_by_hash
        print(json.dumps(lookup_figures(count, only=only), indent=2))
    else:
        print(json.dumps(service_figures(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)))
