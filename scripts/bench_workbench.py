"""Figures of the workbench's reads over a big store (`bench.py --workbench N`): a work-list
page and the statistics, p50/p99 over HTTP at 16 connections.

Fills a SQLite store with N commitments in bulk (direct SQL, not the pipeline): a year of
receipts over 19 departments, most decided, the rest awaiting a decision; a verification
for each (kept, due, overdue, mismatch, manual, proposed with its notice), a few refused
outcomes, and the statistics counters a year of them makes. Then the service runs as a
real uvicorn process on loopback and a second process asks, with department tokens, for
pages of every work list (filters, sorts, offsets; late-only included) and for the
statistics. Not a test: speed is measured here, never asserted.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime, timedelta, timezone
from multiprocessing import get_context
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench_service import DEPARTMENTS, MATTERS_PER_DEPARTMENT, cpu_seconds, measure, running_service
from sqlalchemy import Connection

from ledger import Store, outcome_outbox
from verifier.records import VerifierRecords, WorkLists

BEIJING = timezone(timedelta(hours=8))
YEAR_S = 365 * 86_400.0
GOALS_MS = {"work_list_page_p99": 50.0, "statistics_p99": 20.0}
# A verification's state and the statistics' metric it counts in (besides `verified`).
_METRICS = {
    "kept": "kept",
    "mismatch": "mismatch",
    "manual": "manual",
    "proposed": "proposed",
    "breached": "breach",
}
_LISTS = ("awaiting-decision", "rectification", "defence", "manual", "refused", "overdue")


def _digest(text: bytes) -> bytes:
    return hashlib.blake2b(text, digest_size=32).digest()


def _insert_many(
    connection: Connection, table: str, rows: list[tuple[Any, ...]], names: str
) -> None:
    marks = ", ".join("?" * len(names.split(",")))
    statement = f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608 - ours
    connection.exec_driver_sql(statement, rows)


_COMMITMENT = (
    "id, hash, code, matter_code, department, applicant_fingerprint, received_at, state, "
    "sealed, wrapped_key, channel, decided_at"
)
_VERIFICATION = (
    "commitment_hash, matter_code, department, due_on, deadline_provisional, state, "
    "rectify_by, overdue_flagged, updated_at"
)
_NOTICE = (
    "commitment_hash, department, evidence, signed, issued_on, defence_days, delivered_on, "
    "defence_by, state, updated_at"
)


def fill(store_url: str, count: int, now: float, *, seed: int = 15, chunk: int = 50_000) -> float:
    """Bulk-insert `count` commitments and what the lists and statistics read; seconds."""
    started = time.perf_counter()
    rng = random.Random(seed)  # noqa: S311 - synthetic rows, reproducible
    store = Store(store_url)
    VerifierRecords(store)  # the verifier's tables, the statistics' counters among them
    WorkLists(store)  # the record kinds' tables and the lists' indexes
    today = datetime.fromtimestamp(now, BEIJING).date()
    matters = [
        (f"BJ-{d}-{n:04d}", f"BJ-{d}")
        for d in DEPARTMENTS
        for n in range(1, MATTERS_PER_DEPARTMENT + 1)
    ]
    counts: Counter[tuple[str, str, str, str]] = Counter()
    try:
        for start in range(0, count, chunk):
            rows, checks, notices = [], [], []
            for serial in range(start, min(count, start + chunk)):
                digest = _digest(b"bench-work-%d" % serial)
                matter, department = rng.choice(matters)
                received = now - rng.random() ** 2 * YEAR_S  # more of them recent
                recent = now - received < 3 * 86_400
                undecided = rng.random() < (0.5 if recent else 0.03)
                day = datetime.fromtimestamp(received, BEIJING).date()
                counts[department, matter, day.isoformat(), "received"] += 1
                if not undecided:
                    counts[department, matter, day.isoformat(), "decided"] += 1
                    if rng.random() < 0.04:
                        counts[department, matter, day.isoformat(), "decided_late"] += 1
                rows.append(
                    (
                        serial + 1,
                        digest,
                        f"110105{serial:014d}",
                        matter,
                        department,
                        _digest(b"bench-applicant-%d" % serial),
                        received,
                        "anchored",
                        b"\0" * 64,
                        b"\0" * 40,
                        "online" if rng.random() < 0.7 else "counter",
                        None if undecided else received + rng.random() * 14_400,
                    )
                )
                state, due = _verification(rng, day, today)
                rectify = None
                if state == "mismatch":
                    rectify = (today + timedelta(days=rng.randrange(-20, 40))).isoformat()
                overdue = state == "due" and due < today
                metric = _METRICS.get(state)
                if metric is not None:  # given a first outcome: verified (once), and which
                    counts[department, matter, day.isoformat(), "verified"] += 1
                    counts[department, matter, day.isoformat(), metric] += 1
                checks.append(
                    (
                        digest,
                        matter,
                        department,
                        due.isoformat(),
                        False,
                        state,
                        rectify,
                        overdue,
                        now,
                    )
                )
                if state == "proposed":
                    issued = today - timedelta(days=rng.randrange(0, 20))
                    notices.append(
                        (
                            digest,
                            department,
                            _digest(b"bench-notice-%d" % serial),
                            "{}",
                            issued.isoformat(),
                            5,
                            issued.isoformat(),
                            (issued + timedelta(days=7)).isoformat(),
                            "open",
                            now,
                        )
                    )
            with store.engine.begin() as connection:
                _insert_many(connection, "commitments", rows, _COMMITMENT)
                _insert_many(connection, "verifications", checks, _VERIFICATION)
                if notices:
                    _insert_many(connection, "notices", notices, _NOTICE)
        with store.engine.begin() as connection:
            _refused(connection, rng, count, now)
            _counters(connection, counts, count)
            connection.exec_driver_sql("ANALYZE")  # the planner's statistics, as in production
    finally:
        store.close()
    return time.perf_counter() - started


def _filled(path: Path, count: int, now: float) -> float:
    """A store of `count` commitments at `path`: filled anew, or copied from the one kept in
    $BENCH_WORKBENCH_STORE (a directory) by an earlier run less than a day ago (its times
    are relative to when it was filled), so that a figure can be taken again quickly."""
    kept = os.environ.get("BENCH_WORKBENCH_STORE")
    if not kept:
        return fill(f"sqlite:///{path}", count, now)
    store = Path(kept) / f"workbench-{count}.db"
    if store.exists() and now - store.stat().st_mtime < 86_400:
        shutil.copyfile(store, path)
        return 0.0
    seconds = fill(f"sqlite:///{path}", count, now)
    Path(kept).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, store)  # fill closed the store: its WAL is checkpointed
    return seconds


def _verification(rng: random.Random, received: date, today: date) -> tuple[str, date]:
    due = received + timedelta(days=rng.randrange(30, 120))
    if due >= today:
        return "due", due
    roll = rng.random()
    for state, share in (("kept", 0.86), ("due", 0.02), ("mismatch", 0.05), ("manual", 0.03)):
        if roll < share:
            return state, due
        roll -= share
    return ("proposed" if roll < 0.02 else "breached"), due


def _refused(connection: Connection, rng: random.Random, count: int, now: float) -> None:
    rows = [
        {
            "commitment_hash": _digest(b"bench-work-%d" % rng.randrange(count)),
            "department": f"BJ-{rng.choice(DEPARTMENTS)}",
            "status": 3,
            "evidence": _digest(b"bench-refused-%d" % i),
            "report": "{}",
            "created_at": now - rng.random() * YEAR_S,
            "recorded_at": now,
            "abandoned": "the contract refused: OutcomeNotAllowed",
        }
        for i in range(max(1, count // 500))
    ]
    connection.execute(outcome_outbox.insert(), rows)


def _counters(
    connection: Connection, counts: Counter[tuple[str, str, str, str]], count: int
) -> None:
    from verifier.records.stats import RECEIVED_MARK, rebuild_rollups, stat_counts, stat_marks

    rows = [(d, m, day, metric, n) for (d, m, day, metric), n in counts.items() if n]
    for start in range(0, len(rows), 100_000):
        _insert_many(
            connection,
            stat_counts.name,
            rows[start : start + 100_000],
            "department, matter_code, day, metric, count",
        )
    rebuild_rollups(connection)  # the week and month counters, from the days written here
    # The received counter has counted every commitment filled: no catch-up to do.
    connection.execute(
        stat_marks.update().where(stat_marks.c.name == RECEIVED_MARK).values(value=count)
    )


def _request(path: str, token: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n".encode()


def _list_requests(rng: random.Random, tokens: dict[str, str], today: date) -> list[bytes]:
    """What clerks ask: each list, first pages mostly, late ones, a matter, a month, CSV."""
    requests = []
    for _ in range(2_000):
        department = rng.choice(sorted(tokens))
        name = rng.choice(_LISTS)
        params: dict[str, object] = {"limit": rng.choice((20, 50, 50, 100))}
        roll = rng.random()
        if roll < 0.3:
            params["late"] = "true"
        elif roll < 0.45:
            params["matter"] = f"{department}-{rng.randrange(1, MATTERS_PER_DEPARTMENT + 1):04d}"
        elif roll < 0.55 and name != "awaiting-decision":
            params["until"] = (today + timedelta(days=rng.randrange(-30, 30))).isoformat()
        if rng.random() < 0.2:
            params["order"] = "desc"
        if rng.random() < 0.2:
            params["offset"] = rng.choice((50, 100, 200))
        if rng.random() < 0.05:
            params["format"] = "csv"
        query = "&".join(f"{k}={quote(str(v))}" for k, v in params.items())
        requests.append(_request(f"/v1/worklists/{name}?{query}", tokens[department]))
    return requests


def _stats_requests(
    rng: random.Random, tokens: dict[str, str], supervisor: str, today: date
) -> dict[str, list[bytes]]:
    """Each scope's asks, as people send them: a department's own (all its matters, or
    one), the reform office comparing departments (each one's matters added up) and, bounded
    to one department, that department's matters; the public's subset without a token, per
    department and matter. A day, week or month apart, over the default spans."""
    asks: dict[str, list[bytes]] = {
        "department": [],
        "matter": [],
        "supervisor": [],
        "supervisor_matters": [],
        "public": [],
    }
    for _ in range(1_000):
        department = rng.choice(sorted(tokens))
        period = rng.choice(("day", "week", "month"))
        span = {"day": 30, "week": 84, "month": 365}[period]
        start = (today - timedelta(days=span - 1)).isoformat()
        params = f"period={period}&start={start}&end={today.isoformat()}"
        matter = f"{department}-{rng.randrange(1, MATTERS_PER_DEPARTMENT + 1):04d}"
        asks["department"].append(_request(f"/v1/stats?{params}", tokens[department]))
        asks["matter"].append(_request(f"/v1/stats?{params}&matter={matter}", tokens[department]))
        asks["supervisor"].append(_request(f"/v1/stats?{params}&by=department", supervisor))
        asks["supervisor_matters"].append(
            _request(f"/v1/stats?{params}&department={department}", supervisor)
        )
        asks["public"].append(f"GET /v1/stats?{params} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    return asks


def workbench_figures(
    count: int, *, workers: int = 2, connections: int = 16, requests: int = 4_000
) -> dict[str, Any]:
    """Work-list page and statistics p50/p99 over HTTP with `count` commitments."""
    from api.service import SUPERVISOR, TokenStore

    rng = random.Random(16)  # noqa: S311 - which pages to ask for, reproducible
    now = time.time()
    today = datetime.fromtimestamp(now, BEIJING).date()
    with tempfile.TemporaryDirectory(prefix="bench-workbench-") as directory:
        path = Path(directory) / "ledger.db"
        url = f"sqlite:///{path}"
        seconds = _filled(path, count, now)
        store = Store(url)
        issue = TokenStore(store).issue
        tokens = {f"BJ-{d}": issue(f"BJ-{d}", "verifier").token for d in DEPARTMENTS}
        supervisor = issue(SUPERVISOR, "supervisor").token
        store.close()
        figures: dict[str, Any] = {
            "commitments": count,
            "fill_seconds": round(seconds, 1),
            "workers": workers,
            "goals_ms": GOALS_MS,
        }
        env = {
            "COMMITLEDGER_DATA_DIR": directory,
            "COMMITLEDGER_STORE_URL": url,
            "COMMITLEDGER_FEED": "false",
            # the public's statistics are rate limited per address: the bench is one address
            "COMMITLEDGER_RATE_LIMIT_BURST": "1000000",
            "COMMITLEDGER_RATE_LIMIT_PER_SECOND": "1000000",
        }
        scopes = _stats_requests(rng, tokens, supervisor, today)
        mixed = [r for ask in zip(*scopes.values(), strict=True) for r in ask]
        loads = {"work_list_page": _list_requests(rng, tokens, today), "statistics": mixed}
        with (
            running_service(env, workers) as (port, pid),
            ProcessPoolExecutor(1, mp_context=get_context("spawn")) as client,
        ):
            for paths in loads.values():  # caches and kept-alive connections
                client.submit(measure, port, paths, 4, 400).result()
            for name, paths in loads.items():
                before = cpu_seconds(pid)
                found = client.submit(measure, port, paths, connections, requests).result()
                found["service_cpu_ms_per_request"] = round(
                    (cpu_seconds(pid) - before) * 1000 / found["requests"], 3
                )
                figures[name] = found
            by_list = {
                name: [r for r in loads["work_list_page"] if f"/{name}?".encode() in r]
                for name in _LISTS
            }
            figures["per_list"] = {
                name: client.submit(measure, port, paths, connections, 800).result()
                for name, paths in by_list.items()
            }
            figures["statistics_per_scope"] = {
                scope: client.submit(measure, port, asks, connections, 800).result()
                for scope, asks in scopes.items()
            }
    figures["work_list_page_p99_ms"] = figures["work_list_page"]["p99_ms"]
    figures["statistics_p99_ms"] = figures["statistics"]["p99_ms"]
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(workbench_figures(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)))
