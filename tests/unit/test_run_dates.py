"""A run's as-of day (issue 14, "Dates from one as-of"): today, the chain's day, never a day
before a commitment it decides; refused input stores nothing. Against a node: tests/
integration/test_run_dates_anvil.py."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from support.cli import unreachable_rpc, write_json
from support.verify_cli import HRSS, bad_input, cli, ok_json, run_args, write_keys

from api import run_start
from api.demo import sample_commitments
from api.errors import RunRefusedError
from ledger import SigningKey, sign_commitment
from verifier.feed.records import CHINA_TIME

TODAY = date(2026, 11, 27)


FIRST, LATER = date(2026, 11, 2), date(2026, 11, 20)


@pytest.mark.parametrize(
    ("on", "latest", "says"),
    [
        (date(2026, 11, 28), LATER, "a run is for today (2026-11-27), not 2026-11-28"),
        (date(2026, 11, 1), LATER, "before the first commitment it decides (made 2026-11-02)"),
        (date(2026, 11, 10), LATER, "before a commitment it decides was made (2026-11-20)"),
        # after every commitment still to decide, 20 days back or one: a day past all the same
        (date(2026, 11, 7), None, "a run is for today (2026-11-27), not 2026-11-07"),
        (date(2026, 11, 26), LATER, "a run is for today (2026-11-27), not 2026-11-26"),
    ],
)
def test_a_run_is_for_today_only(on: date, latest: date | None, says: str) -> None:
    with pytest.raises(RunRefusedError) as refused:
        run_start.check_run_day(on, TODAY, FIRST, latest)
    assert says in str(refused.value)
    run_start.check_run_day(TODAY, TODAY, FIRST, latest)


def test_the_chain_day_must_be_the_runs() -> None:
    run_start.check_chain_day(TODAY, TODAY)
    with pytest.raises(RunRefusedError) as refused:
        run_start.check_chain_day(date(2026, 11, 26), TODAY)
    assert "would record this run on 2026-11-27, not 2026-11-26" in str(refused.value)


def test_a_run_reads_days_as_the_feed_does() -> None:
    # The feed dates a record by its block's timestamp in Beijing: so do the run's checks.
    assert run_start.PLATFORM_TIME.utcoffset(None) == CHINA_TIME.utcoffset(None)
    evening_utc = int(datetime(2026, 11, 26, 16, 30, tzinfo=UTC).timestamp())
    assert run_start.day_of_block_time(evening_utc) == date(2026, 11, 27)


def test_a_run_dated_before_a_commitment_it_decides_is_refused_and_stores_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before the fix only the department's first commitment bounded the day: a run as of
    # 2026-11-10 went ahead and dated the report of a commitment made on 2026-11-20.
    monkeypatch.setattr(run_start, "today", lambda: TODAY)
    keys = write_keys(tmp_path)
    db = tmp_path / "ledger.db"
    store = f"sqlite:///{db}"
    first = next(sample_commitments(1, department=HRSS))
    later = next(
        sample_commitments(1, department=HRSS, start=datetime(2026, 11, 20, 9, tzinfo=UTC))
    )
    for n, document in enumerate((first, later)):
        signed = sign_commitment(document, SigningKey.generate("ed25519")).to_json_obj()
        path = write_json(tmp_path / f"signed-{n}.json", signed)
        master = ("--master-key-file", keys["master"])
        ok_json(cli("submit", path, "--store", store, *master, "--json"))
    nowhere = write_json(
        tmp_path / "deployment.json",
        {
            "rpc": unreachable_rpc(),
            "chain_id": 31337,
            "contract": "0x" + "ab" * 20,
            "deployed_at_block": 1,
            "department": HRSS,
        },
    )
    with sqlite3.connect(db) as connection:
        tables_before = connection.execute("SELECT name FROM sqlite_master").fetchall()
    message = bad_input(cli(*run_args(keys, nowhere, store, "--on", "2026-11-10")))
    assert "before a commitment it decides was made (2026-11-20)" in message
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT name FROM sqlite_master").fetchall() == tables_before
        assert connection.execute("SELECT count(*) FROM outcome_outbox").fetchone() == (0,)
