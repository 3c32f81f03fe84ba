"""Issue 14, "Dates from one as-of": a run is dated the chain's day, so the public list, the
feed and the chain give a breach one date; a back-dated run is refused and stores nothing
(it would publish dates the chain contradicts and deadlines that passed before anyone was
told). On anvil, whose clock the tests set: the chain's date is what is checked."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.dated_chain import DatedAnvil
from support.verify_cli import HRSS, bad_input, cli, ok_json, run_args, write_keys

from api import run_start
from api.demo import create_app, planted, running, sample_commitments
from ledger import SigningKey, sign_commitment
from verifier import add_months, default_catalog, publication_period

DAY = date(2026, 11, 27)  # sample commitments are made on 2026-11-02; their data run to 2026-10
TOKEN = "sample-token"


@pytest.fixture
def dated_anvil(anvil_binary: None) -> Iterator[DatedAnvil]:
    """anvil whose clock reads DAY (mid-morning in Beijing)."""
    with DatedAnvil(DAY) as node:
        yield node


def picked(count: int) -> list[Any]:
    """`count` sample commitments of BJ-HRSS, two of them planted false and two mismatches."""
    chosen: list[Any] = []
    wanted = {"false": 2, "mismatch": 2, "agree": count - 4}
    for document in sample_commitments(1_000, department=HRSS):
        kind = planted(document.applicant.id_number)
        if wanted.get(kind, 0) > 0:
            wanted[kind] -= 1
            chosen.append(document)
    assert not any(wanted.values())
    return chosen


class Ledger:
    """A deployment on the dated node, with anchored sample commitments of BJ-HRSS."""

    def __init__(self, node: DatedAnvil, tmp_path: Path, count: int = 12) -> None:
        self.node = node
        self.tmp_path = tmp_path
        self.keys = write_keys(tmp_path)
        self.deployment = tmp_path / "deployment.json"
        self.db = tmp_path / "ledger.db"
        self.store = f"sqlite:///{self.db}"
        ok_json(
            cli(
                "deploy",
                "--rpc",
                node.url,
                "--admin-key",
                self.keys["admin"],
                "--department",
                HRSS,
                "--registrar-key",
                self.keys["registrar"],
                "--verifier-key",
                self.keys["verifier"],
                "--fund",
                "--out",
                self.deployment,
                "--json",
            )
        )
        self.documents = picked(count)
        paths = []
        for document in self.documents:
            signed = sign_commitment(document, SigningKey.generate("ed25519"))
            path = tmp_path / "in" / f"{document.code}.json"
            path.parent.mkdir(exist_ok=True)
            path.write_text(json.dumps(signed.to_json_obj()))
            paths.append(path)
        master = ("--master-key-file", self.keys["master"])
        ok_json(cli("submit", *paths, "--store", self.store, *master, "--json"))
        anchored = ok_json(
            cli(
                "pipeline",
                "run",
                "--key",
                self.keys["registrar"],
                "--store",
                self.store,
                "--deployment",
                self.deployment,
                "--max-age",
                "0",
                "--until-idle",
                "--timeout",
                "60",
                "--json",
            )
        )
        assert anchored["pending"] == 0

    def run(self, *more: object) -> Any:
        return cli(*run_args(self.keys, self.deployment, self.store, *more))

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as connection:
            return connection.execute(sql).fetchall()

    def stored(self) -> dict[str, int]:
        """What a run stores: verifications, queued outcomes, breach records."""
        tables = ("verifications", "outcome_outbox", "breach_records")
        with sqlite3.connect(self.db) as connection:
            present = {
                name for (name,) in connection.execute("SELECT name FROM sqlite_master").fetchall()
            }
            return {
                table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                if table in present
                else 0
                for table in tables
            }


@pytest.fixture
def ledger(dated_anvil: DatedAnvil, tmp_path: Path, restore_signals: None) -> Ledger:
    return Ledger(dated_anvil, tmp_path)


def today_is(monkeypatch: pytest.MonkeyPatch, day: date) -> None:
    monkeypatch.setattr(run_start, "today", lambda: day)


def test_a_run_dated_20_days_back_is_refused_and_stores_nothing(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before the fix the run went ahead: its breaches listed as decided on 2026-11-07 (the
    # chain and the feed: 2026-11-27), its mismatches due for rectification by a day that
    # had passed, to be breached by the next run.
    today_is(monkeypatch, DAY)
    before = ledger.stored()
    block = ledger.node.block_timestamp("latest")
    back = (DAY - timedelta(days=20)).isoformat()
    message = bad_input(ledger.run("--on", back))
    assert f"a run is for today ({DAY}), not {back}" in message
    assert (
        ledger.stored()
        == before
        == {
            "verifications": 0,
            "outcome_outbox": 0,
            "breach_records": 0,
        }
    )
    assert ledger.node.block_timestamp("latest") == block  # nothing sent either

    # The same in JSON, and a run on the day itself goes ahead.
    document = json.loads(ledger.run("--on", back, "--json").stdout)
    assert document["error"]["type"] == "RunRefusedError"
    assert ok_json(ledger.run("--json"))["on"] == DAY.isoformat()


def test_a_run_the_chain_would_date_another_day_is_refused(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This machine's day is ahead of the node's: the outcomes would be recorded on chain (and
    # in the feed) on DAY while the records said the next day.
    ahead = DAY + timedelta(days=1)
    today_is(monkeypatch, ahead)
    message = bad_input(ledger.run("--on", ahead.isoformat()))
    assert f"the chain would record this run on {DAY}, not {ahead}" in message
    assert bad_input(ledger.run()) == message  # today, by default
    assert ledger.stored() == {"verifications": 0, "outcome_outbox": 0, "breach_records": 0}


def test_a_run_dates_its_breaches_and_deadlines_as_the_chain_and_the_feed_do(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    today_is(monkeypatch, DAY)
    token = ledger.tmp_path / "token"
    token.write_text(TOKEN + "\n")
    with running(create_app(TOKEN)) as url:
        sources = ("--sources-url", url, "--sources-token-file", token)
        result = ok_json(ledger.run(*sources, "--json"))
    assert result["on"] == DAY.isoformat()
    assert result["breaches"] == []  # proposed first: the applicants are told
    assert result["proposed"]

    # The department's keys where the service (and its commands) look for them.
    keys_dir = ledger.tmp_path / "keys"
    (keys_dir / HRSS).mkdir(parents=True)
    shutil.copy(ledger.keys["report"], keys_dir / HRSS / "report.pem")
    shutil.copy(ledger.keys["verifier"], keys_dir / HRSS / "verifier.json")
    # An officer confirms each proposed breach the same day: it is published.
    monkeypatch.setenv("COMMITLEDGER_STORE_URL", ledger.store)
    monkeypatch.setenv("COMMITLEDGER_DEPLOYMENT_FILE", str(ledger.deployment))
    monkeypatch.setenv("COMMITLEDGER_MASTER_KEY_FILE", str(ledger.keys["master"]))
    monkeypatch.setenv("COMMITLEDGER_KEYS_DIR", str(keys_dir))
    reasons = ledger.tmp_path / "reasons.txt"
    reasons.write_text("经核查，承诺不实，予以认定。\n", encoding="utf-8")
    for proposed in result["proposed"]:
        confirm = ("--department", HRSS, "--officer", "officer", "--reasons-file", reasons)
        ok_json(
            cli("notices", "confirm", proposed, *confirm, "--data-dir", ledger.tmp_path, "--json")
        )

    # The public list.
    listed = ok_json(
        cli("verify", "breaches", "--store", ledger.store, "--on", DAY.isoformat(), "--json")
    )
    assert listed["total"] == len(result["proposed"])
    catalog = default_catalog()
    for row in listed["records"]:
        assert row["decision_date"] == DAY.isoformat()
        months = publication_period(catalog.matter(row["matter_code"]).severity).months_published
        assert row["publication_end"] == add_months(DAY, months).isoformat()
        # The chain: the day of the block that recorded the breach.
        assert run_start.day_of_block_time(ledger.node.block_timestamp(row["block"])) == DAY

    # The feed.
    common = ("--store", ledger.store, "--master-key-file", ledger.keys["master"])
    ok_json(
        cli(
            "feed",
            "run",
            *common,
            "--deployment",
            ledger.deployment,
            "--keys-dir",
            keys_dir,
            "--until-idle",
            "--json",
        )
    )
    out = ledger.tmp_path / "feed.jsonl"
    since = (DAY - timedelta(days=400)).isoformat()
    ok_json(
        cli(
            "feed",
            "export",
            "--since",
            since,
            "--format",
            "jsonl",
            "--scope",
            "all",
            "--out",
            out,
            "--store",
            ledger.store,
            "--json",
        )
    )
    records = [json.loads(line) for line in out.read_text().splitlines()]
    breaches = [r for r in records if r["kind"] == "breach"]
    assert {r["evidence"]["transaction"] for r in breaches} == {
        row["transaction"] for row in listed["records"]
    }
    assert {r["determined_on"] for r in records} == {DAY.isoformat()}

    # Every rectification deadline is after the day the applicant is told.
    deadlines = ledger.rows("SELECT rectify_by FROM verifications WHERE state = 'mismatch'")
    assert deadlines
    assert all(date.fromisoformat(day) > DAY for (day,) in deadlines)
