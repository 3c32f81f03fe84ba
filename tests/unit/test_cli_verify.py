"""`commitledger verify run` and `verify breaches`, in-process.

Bad input fails before any node is contacted. A run end to end needs one chain across
several invocations: it is in tests/integration/test_cli_verify_anvil.py, against anvil.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.cli import one_json, unreachable_rpc, write_json
from support.verify_cli import (
    HRSS,
    bad_input,
    cli,
    explain,
    ok_json,
    run_args,
    write_keys,
)

from api import run_start
from api.cli import summary_json
from api.demo import sample_commitments
from ledger import Applicant, SigningKey, Store, hex32, keccak256, make_resident_id, sign_commitment
from verifier import BreachEvidence, default_catalog, make_breach_record
from verifier.engine import RunSummary
from verifier.records import VerifierRecords


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    """Key files as `keys new` writes them: accounts, a report key, a master key."""
    return write_keys(tmp_path)


@pytest.fixture
def nowhere(tmp_path: Path) -> Path:
    """A deployment file whose node does not answer."""
    record = {
        "rpc": unreachable_rpc(),
        "chain_id": 31337,
        "contract": "0x" + "ab" * 20,
        "deployed_at_block": 1,
        "department": HRSS,
    }
    return write_json(tmp_path / "deployment.json", record)


# ---------------------------------------------------------------------- verify run, bad input


def test_run_refuses_a_malformed_day(keys: dict[str, Path], nowhere: Path, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    message = bad_input(cli(*run_args(keys, nowhere, store, "--on", "27/11/2026")))
    assert "--on '27/11/2026' is not a date" in message
    assert not (tmp_path / "ledger.db").exists()  # refused before anything was opened


def test_run_refuses_a_sources_url_without_a_token(
    keys: dict[str, Path], nowhere: Path, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    args = run_args(keys, nowhere, store, "--sources-url", "http://127.0.0.1:9", "--json")
    message = bad_input(cli(*args), json_out=True)
    assert "--sources-url and --sources-token-file go together" in message


def test_run_refuses_a_sources_url_that_is_not_http(
    keys: dict[str, Path], nowhere: Path, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("secret\n")
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    args = run_args(keys, nowhere, store, "--sources-url", "ftp://x", "--sources-token-file", token)
    assert "not an http(s) URL" in bad_input(cli(*args))


def test_run_refuses_an_unknown_department(
    keys: dict[str, Path], nowhere: Path, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    message = bad_input(cli(*run_args(keys, nowhere, store, "--department", "BJ-NOPE")))
    assert "unknown department 'BJ-NOPE'" in message
    assert "BJ-HRSS" in message


def test_run_needs_a_department_when_the_deployment_names_none(
    keys: dict[str, Path], tmp_path: Path
) -> None:
    record = {"rpc": unreachable_rpc(), "chain_id": 1, "contract": "0x" + "ab" * 20}
    deployment = write_json(tmp_path / "deployment.json", record)
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert "give --department" in bad_input(cli(*run_args(keys, deployment, store)))


def test_run_refuses_a_missing_deployment(keys: dict[str, Path], tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    message = bad_input(cli(*run_args(keys, tmp_path / "absent.json", store)))
    assert "absent.json" in message


def test_run_refuses_a_report_key_that_is_not_a_key(
    keys: dict[str, Path], nowhere: Path, tmp_path: Path
) -> None:
    keys = {**keys, "report": keys["verifier"]}  # an account file, not a PEM
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    bad_input(cli(*run_args(keys, nowhere, store)))


def test_run_refuses_an_unreadable_token_file(
    keys: dict[str, Path], nowhere: Path, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    args = run_args(
        keys,
        nowhere,
        store,
        "--sources-url",
        "http://127.0.0.1:9",
        "--sources-token-file",
        tmp_path / "no-token",
    )
    assert "cannot read token" in bad_input(cli(*args))


def test_run_without_data_sources_is_refused_unless_all_manual(
    keys: dict[str, Path], nowhere: Path, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    message = bad_input(cli(*run_args(keys, nowhere, store, all_manual=False)))
    assert "no department data sources" in message and "--all-manual" in message
    # With the flag the run goes on (here to the node, which does not answer: exit 3).
    assert "no Ethereum node answers" in bad_input(cli(*run_args(keys, nowhere, store)), code=3)


def test_run_refuses_a_day_before_the_first_commitment_or_to_come(
    keys: dict[str, Path], nowhere: Path, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    [document] = list(sample_commitments(1, department=HRSS))
    signed = sign_commitment(document, SigningKey.generate("ed25519")).to_json_obj()
    path = write_json(tmp_path / "signed.json", signed)
    ok_json(cli("submit", path, "--store", store, "--master-key-file", keys["master"], "--json"))
    message = bad_input(cli(*run_args(keys, nowhere, store, "--on", "1900-01-01")))
    assert "before the first commitment it decides (made 2026-11-02)" in message
    tomorrow = (run_start.today() + timedelta(days=1)).isoformat()  # the platform's today
    assert "not " + tomorrow in bad_input(cli(*run_args(keys, nowhere, store, "--on", tomorrow)))


def test_run_reports_an_unreachable_node(
    keys: dict[str, Path], nowhere: Path, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    message = bad_input(cli(*run_args(keys, nowhere, store, "--json")), json_out=True, code=3)
    assert "no Ethereum node answers" in message


def test_an_integrity_failure_makes_the_run_a_failed_check() -> None:
    summary = RunSummary(examined=3)
    summary.outcomes.update({"kept": 2, "integrity_failure": 1})
    assert summary_json(HRSS, date(2026, 11, 27), summary)["ok"] is False
    del summary.outcomes["integrity_failure"]
    assert summary_json(HRSS, date(2026, 11, 27), summary)["ok"] is True


def test_run_needs_the_required_keys() -> None:
    result = cli("verify", "run", "--json")
    assert result.exit_code == 2
    assert one_json(result.stdout)["error"]["type"] == "UsageError"


# ---------------------------------------------------------------------- verify breaches


def a_breach(n: int, decided: date) -> tuple[Any, bytes]:
    matter = default_catalog().matter("BJ-HRSS-0001")
    applicant = Applicant(
        kind="person",
        name="张三丰",
        id_type="resident_id",
        id_number=make_resident_id("110105", date(1990, 1, 1 + n), n),
    )
    subject = hex32(keccak256(f"commitment {n}".encode()))
    record = make_breach_record(
        applicant,
        matter,
        subject,
        facts="承诺连续缴纳社会保险84个月，经核查中断14个月，逾期未补正。",
        decision="撤销审批决定，记入失信记录",
        document_number=f"京人社承诺〔2026〕{n}号",
        decision_date=decided,
        evidence=BreachEvidence(
            chain_id=31337,
            contract="0x" + "ab" * 20,
            transaction=hex32(keccak256(f"tx {n}".encode())),
            block=100 + n,
            commitment_hash=subject,
        ),
    )
    return record, keccak256(f"applicant {n}".encode())


@pytest.fixture
def listed_store(tmp_path: Path) -> str:
    """A store with two published breach records, decided a month apart."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    store = Store(url)
    records = VerifierRecords(store)
    for n, decided in ((1, date(2026, 12, 1)), (2, date(2027, 1, 4))):
        record, fingerprint = a_breach(n, decided)
        records.add_breach(record, fingerprint)
    store.close()
    return url


def test_breaches_escape_control_characters_for_the_terminal(tmp_path: Path) -> None:
    """A name stored before intake refused them reaches the terminal escaped, not raw."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    store = Store(url)
    record, fingerprint = a_breach(1, date(2026, 12, 1))
    hostile = "Evil\x1b[2J\r\nCo\u202eLtd [red]x[/red]"
    VerifierRecords(store).add_breach(dataclasses.replace(record, party_name=hostile), fingerprint)
    store.close()
    result = cli("verify", "breaches", "--store", url, "--on", "2027-02-01")
    assert result.exit_code == 0, explain(result)
    for raw in ("\x1b", "\r", "\u202e"):
        assert raw not in result.stdout
    flat_output = result.stdout.replace("\n", "").replace(" ", "").replace("│", "")
    for escaped in ("\\u001b", "\\u000d", "\\u202e", "[red]x[/red]"):
        assert escaped in flat_output, escaped


def test_breaches_lists_masked_records_newest_first(listed_store: str) -> None:
    document = ok_json(
        cli("verify", "breaches", "--store", listed_store, "--on", "2027-02-01", "--json")
    )
    assert document["total"] == 2
    rows = document["records"]
    assert [row["decision_date"] for row in rows] == ["2027-01-04", "2026-12-01"]
    for row in rows:
        assert row["party_name"] == "张**"
        assert "*" in row["party_code"]
        assert row["severity"] == "general"
        assert row["transaction"].startswith("0x")
        assert row["publication_end"] > row["decision_date"]
    assert "张三丰" not in json.dumps(document, ensure_ascii=False)


def test_breaches_on_a_day_shows_only_what_was_decided_by_then(listed_store: str) -> None:
    args = ("verify", "breaches", "--store", listed_store, "--on", "2026-12-15", "--json")
    assert ok_json(cli(*args))["total"] == 1


def test_breaches_filter_by_name(listed_store: str) -> None:
    base = ("verify", "breaches", "--store", listed_store, "--on", "2027-02-01", "--json")
    assert ok_json(cli(*base, "--name", "张"))["total"] == 2
    assert ok_json(cli(*base, "--name", "李"))["total"] == 0


def test_breaches_filter_by_credit_code(listed_store: str) -> None:
    base = ("verify", "breaches", "--store", listed_store, "--on", "2027-02-01", "--json")
    rows = ok_json(cli(*base))["records"]
    shown = rows[0]["party_code"]
    found = ok_json(cli(*base, "--credit-code", shown))
    assert found["total"] == 1
    assert found["records"][0]["party_code"] == shown
    assert ok_json(cli(*base, "--credit-code", "91110105MA00000000"))["total"] == 0


def test_breaches_for_people_prints_a_table(listed_store: str) -> None:
    result = cli("verify", "breaches", "--store", listed_store, "--on", "2027-02-01")
    assert result.exit_code == 0, explain(result)
    assert "Public breach list on 2027-02-01" in result.stdout
    assert "张**" in result.stdout
    assert "张三丰" not in result.stdout


def test_breaches_refuses_a_malformed_day(listed_store: str) -> None:
    result = cli("verify", "breaches", "--store", listed_store, "--on", "tomorrow")
    assert "is not a date" in bad_input(result)


def test_breaches_refuses_a_page_size_out_of_range(listed_store: str) -> None:
    result = cli("verify", "breaches", "--store", listed_store, "--page-size", "0", "--json")
    assert result.exit_code == 2
    assert one_json(result.stdout)["ok"] is False


def test_breaches_needs_a_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no data/ledger.db here
    assert "no store here" in bad_input(cli("verify", "breaches"))
