"""The service bench's store: the fill leaves what the daily lifecycle job would have left.

A small store filled as before (every publication left published) and then expired by the
lifecycle's own `close_expired`, day by day, holds the same rows as the new fill; the kept
store of an older fill is not reused. No chain: the records' commitments are taken as
Expired on chain, as the job's first half (`send_expiries`) leaves them.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from ledger import Status, Store
from verifier.engine.actions import DepartmentActions
from verifier.records import VerifierRecords

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import bench_service  # noqa: E402

COUNT = 400
GENERATION = "generation"  # the counters' cache mark: moves once per transaction, not state


def _lifecycle_expiry(path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run each department's `close_expired` on every day after a publication ended, at the
    job's hour (time.time as it would read then); how many records it expired."""
    store = Store(f"sqlite:///{path}")
    records = VerifierRecords(store)
    with sqlite3.connect(path) as db:
        ends = [
            date.fromisoformat(end)
            for (end,) in db.execute(
                "SELECT DISTINCT publication_end FROM breach_records WHERE status = 'published' "
                "AND publication_end < ? ORDER BY 1",
                (bench_service.ON.isoformat(),),
            )
        ]
    on_chain = SimpleNamespace(status=Status.EXPIRED)  # what send_expiries left on chain
    expired = 0
    try:
        for end in ends:
            day = end + timedelta(days=1)
            stamp = bench_service.lifecycle_run_at(day)
            monkeypatch.setattr(time, "time", lambda stamp=stamp: stamp)
            for code in bench_service.DEPARTMENTS:
                actions: Any = SimpleNamespace(
                    code=f"BJ-{code}",
                    department=SimpleNamespace(id=1),
                    ledger=SimpleNamespace(status_of=lambda _department, _hash: on_chain),
                    records=records,
                    store=store,
                )
                actions._readmit = lambda fingerprint, on, a=actions: DepartmentActions._readmit(
                    a, fingerprint, on
                )
                expired += len(
                    DepartmentActions.close_expired(cast(DepartmentActions, actions), day)
                )
            monkeypatch.undo()
    finally:
        store.close()
    return expired


def _tables(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, sorted (the records with their rowids, which the name index
    holds); left out: the counters' generation
    mark, when each store's migrations were applied, and the name index's own pages (their
    layout is not its content): checked instead to index exactly the records' names."""
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO breach_names(breach_names) VALUES ('integrity-check')")
        names = [
            n
            for (n,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "AND name NOT LIKE 'breach_names%'"
            )
        ]
        rows = {
            n: sorted(db.execute(f'SELECT {_columns(n)} FROM "{n}"').fetchall(), key=repr)
            for n in names
        }
    rows["stat_marks"] = [r for r in rows["stat_marks"] if r[0] != GENERATION]
    for name in [n for n in rows if n.endswith("_migrations")]:
        rows[name] = [r[:1] for r in rows[name]]
    return rows


def _columns(table: str) -> str:
    return "rowid, *" if table == "breach_records" else "*"


def test_fill_is_the_old_fill_after_the_lifecycle_expiry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    before = bench_service.fill(f"sqlite:///{old}", COUNT, expire=False)
    expired = _lifecycle_expiry(old, monkeypatch)
    filled = bench_service.fill(f"sqlite:///{new}", COUNT)

    assert expired == filled.expired_by_lifecycle > COUNT // 3  # most ended long ago
    old_tables, new_tables = _tables(old), _tables(new)
    assert old_tables.keys() == new_tables.keys()
    for name in old_tables:
        assert old_tables[name] == new_tables[name], name
    assert new_tables["stat_counts"]  # the expiries were counted, as the job counts them
    # The same records and samples otherwise: only their states moved.
    assert dataclass_keys(before) == dataclass_keys(filled)
    assert before.published == filled.published


def dataclass_keys(filled: bench_service.Filled) -> tuple[list[str], ...]:
    return filled.hashes, filled.ids, filled.names, filled.codes


def test_fill_leaves_no_ended_publication_listed(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    filled = bench_service.fill(f"sqlite:///{path}", COUNT)
    with sqlite3.connect(path) as db:
        counts = dict(db.execute("SELECT status, count(*) FROM breach_records GROUP BY status"))
        ended = db.execute(
            "SELECT count(*) FROM breach_records WHERE status = 'published' "
            "AND publication_end < ?",
            (bench_service.ON.isoformat(),),
        ).fetchone()[0]
        expired_json = [
            json.loads(text)["status"]
            for (text,) in db.execute(
                "SELECT public_json FROM breach_records WHERE status = 'expired'"
            )
        ]
    assert ended == 0
    assert counts["published"] == filled.published
    assert sum(counts.values()) == COUNT
    assert set(expired_json) == {"expired"}
    assert f"{filled.published:,} published and listed" in bench_service._store_text(filled)


def test_a_store_kept_by_an_older_fill_is_not_reused(tmp_path: Path) -> None:
    (tmp_path / f"breaches-{COUNT}.db").write_bytes(b"an older fill's store")
    (tmp_path / f"breaches-{COUNT}.json").write_text(json.dumps({"count": COUNT, "seconds": 1.0}))

    store, filled = bench_service.kept_store(tmp_path, COUNT)

    assert store.name == f"breaches-{COUNT}-v{bench_service.STORE_VERSION}.db"
    assert filled.seconds > 0  # filled anew
    assert filled.expired_by_lifecycle > 0
    again, kept = bench_service.kept_store(tmp_path, COUNT)
    assert again == store
    assert kept.seconds == 0.0  # the kept one, not filled again
    assert kept.published == filled.published
    assert (tmp_path / f"breaches-{COUNT}.db").read_bytes() == b"an older fill's store"
