"""`commitledger demo`: the whole story on the embedded chain, its summary, and its tamper check."""

from __future__ import annotations

from typing import Any

import pytest
from cli_helpers import one_json
from typer.testing import CliRunner

from api.cli import app
from api.demo import run_demo

COUNT = 40


@pytest.fixture(scope="module")
def summary() -> dict[str, Any]:
    return run_demo(COUNT, quiet=True)


def is_hex32(value: object) -> bool:
    return isinstance(value, str) and len(value) == 66 and value.startswith("0x")


def test_demo_succeeds_and_every_proof_checks(summary: dict[str, Any]) -> None:
    assert summary["ok"] is True
    assert summary["commitments"] == COUNT
    assert summary["proofs_checked"] == COUNT
    assert summary["proofs_failed"] == 0
    assert sum(summary["matters"].values()) == COUNT


def test_demo_detects_the_tampered_document(summary: dict[str, Any]) -> None:
    tamper = summary["tamper"]
    assert tamper["signature_rejected"] is True
    assert tamper["anchor_check_failed"] is True
    assert "anchored" in tamper["failed_checks"]


def test_demo_reports_gas_and_the_batch(summary: dict[str, Any]) -> None:
    batch = summary["batch"]
    assert is_hex32(batch["root"])
    assert is_hex32(batch["transaction"])
    assert batch["block"] > 0
    assert batch["gas_used"] > 21_000
    assert batch["gas_per_commitment"] == round(batch["gas_used"] / COUNT, 1)
    # one batch transaction costs each commitment far less than a transaction of its own
    assert batch["gas_per_commitment"] < 21_000


def test_demo_reports_its_chain_and_timings(summary: dict[str, Any]) -> None:
    assert summary["chain"]["kind"] == "embedded"
    assert summary["chain"]["contract"].startswith("0x")
    assert isinstance(summary["chain"]["chain_id"], int)
    assert summary["seconds"]
    assert all(seconds >= 0 for seconds in summary["seconds"].values())


def test_quiet_demo_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_demo(3, quiet=True)["ok"] is True
    captured = capsys.readouterr()
    assert captured.out == captured.err == ""


def test_demo_command_json_prints_one_document() -> None:
    result = CliRunner().invoke(app, ["demo", "--count", "30", "--json"])
    assert result.exit_code == 0, result.stderr
    document = one_json(result.stdout)
    assert document["ok"] is True
    assert document["commitments"] == 30
    assert document["proofs_failed"] == 0
    assert document["tamper"]["signature_rejected"] is True
    assert document["tamper"]["anchor_check_failed"] is True
    assert document["batch"]["gas_used"] > 0


def test_demo_command_for_people_prints_tables_on_stderr() -> None:
    result = CliRunner().invoke(app, ["demo", "--count", "5"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "demo finished" in result.stderr
    assert "Merkle root" in result.stderr
