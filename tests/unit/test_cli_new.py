"""`commitledger new`: a complete, valid commitment for a matter from an applicant's data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from ledger import Commitment
from verifier import default_catalog

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_new_writes_a_valid_commitment_from_the_example() -> None:
    code, output = run(
        "new", "--matter", "BJ-HRSS-0001", "--applicant", str(EXAMPLES / "applicant.json")
    )
    assert code == 0, output
    document = Commitment.from_json_obj(json.loads(Path("commitment.json").read_text()))
    matter = default_catalog().matter("BJ-HRSS-0001")
    assert document.notice_hash == "0x" + matter.notice_hash().hex()
    assert [c.key for c in document.claims] == [s.key for s in matter.claims]
    assert document.code.startswith(default_catalog().region)
    assert len(set(bytes.fromhex(document.salt[2:]))) >= 16


def test_codes_and_salts_are_never_repeated() -> None:
    for n in range(3):
        code, output = run(
            "new",
            "--matter",
            "BJ-HRSS-0001",
            "--applicant",
            str(EXAMPLES / "applicant.json"),
            "--out",
            f"c{n}.json",
        )
        assert code == 0, output
    documents = [json.loads(Path(f"c{n}.json").read_text()) for n in range(3)]
    assert len({d["code"] for d in documents}) == 3
    assert len({d["salt"] for d in documents}) == 3


def test_flags_and_stated_claims() -> None:
    code, output = run(
        "new",
        "--matter",
        "BJ-HRSS-0003",
        "--kind",
        "person",
        "--name",
        "李静",
        "--id-type",
        "passport",
        "--id-number",
        "E12345678",
        "--claim",
        "employer_uscc=911101051234567883",
        "--json",
    )
    assert code == 0, output
    document = json.loads(Path("commitment.json").read_text())
    assert {"key": "employer_uscc", "op": "==", "value": "911101051234567883"} in document["claims"]


def test_a_missing_stated_claim_is_named_and_nothing_is_written() -> None:
    code, output = run(
        "new", "--matter", "BJ-HRSS-0003", "--applicant", str(EXAMPLES / "applicant.json")
    )
    assert code == 2
    assert "employer_uscc" in output
    assert not Path("commitment.json").exists()
    assert not Path("data/issued_codes.json").exists()  # no code used up


def test_an_unknown_matter_and_an_existing_file_are_refused() -> None:
    code, output = run("new", "--matter", "NOPE", "--applicant", str(EXAMPLES / "applicant.json"))
    assert code == 2 and "known matters" in output
    Path("commitment.json").write_text("{}")
    code, output = run(
        "new", "--matter", "BJ-HRSS-0001", "--applicant", str(EXAMPLES / "applicant.json")
    )
    assert code == 2 and "never overwritten" in output
    assert Path("commitment.json").read_text() == "{}"


def test_examples_make_valid_commitments() -> None:
    for example, matter in (("applicant.json", "BJ-HRSS-0001"), ("graduate.json", "BJ-HRSS-0003")):
        code, output = run(
            "new", "--matter", matter, "--applicant", str(EXAMPLES / example), "--out", example
        )
        assert code == 0, output
