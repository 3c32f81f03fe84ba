"""`commitledger objection …` and `commitledger repair …` without a chain: what is refused
before any transaction, with the command line's exit codes (the whole walk is in
tests/integration/test_appeals_cli_anvil.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.verify_cli import cli, explain

from ledger import MASTER_KEY_ENV

KEY = {MASTER_KEY_ENV: "0x" + "11" * 32}


def run(
    tmp_path: Path, *args: object, env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    result = cli(*args, "--data-dir", tmp_path, "--json", env=KEY if env is None else env)
    assert result.stdout.strip(), explain(result)
    return result.exit_code, json.loads(result.stdout)


def test_both_groups_are_registered() -> None:
    for group, commands in (
        ("objection", ("file", "decide", "list")),
        ("repair", ("apply", "decide", "list")),
    ):
        result = cli(group, "--help")
        assert result.exit_code == 0
        for command in commands:
            assert command in result.stdout


def test_an_unknown_record_is_refused_and_a_blank_text_is_bad_input(tmp_path: Path) -> None:
    code, unknown = run(
        tmp_path, "objection", "file", "BR-0000000000000000", "--department", "BJ-HRSS",
        "--reason", "not mine",
    )  # fmt: skip
    assert code == 1 and unknown["error"]["type"] == "not-found"
    code, blank = run(
        tmp_path, "repair", "apply", "BR-0000000000000000", "--department", "BJ-HRSS",
        "--evidence-text", "  ",
    )  # fmt: skip
    assert code == 2 and "must not be empty" in blank["error"]["message"]
    code, listed = run(tmp_path, "objection", "list", "--department", "BJ-HRSS")
    assert (code, listed["appeals"]) == (0, [])


@pytest.mark.parametrize(
    "args",
    [
        ("objection", "file", "BR-1", "--department", "D", "--reason", "r", "--by", "someone"),
        ("objection", "decide", "OB-1", "--department", "D", "--outcome", "granted",
         "--reasons", "r"),
        ("repair", "decide", "RA-1", "--department", "D", "--outcome", "upheld", "--reasons", "r"),
        ("repair", "list", "--department", "D", "--state", "closed"),
    ],
)  # fmt: skip
def test_a_wrong_choice_is_bad_input(tmp_path: Path, args: tuple[str, ...]) -> None:
    code, refused = run(tmp_path, *args)
    assert code == 2 and refused["ok"] is False


def test_an_appeal_of_no_one_cannot_be_decided(tmp_path: Path) -> None:
    code, refused = run(
        tmp_path, "objection", "decide", "OB-0000000000000000", "--department", "BJ-HRSS",
        "--outcome", "rejected", "--reasons", "no such objection",
    )  # fmt: skip
    assert code == 1 and refused["error"]["type"] == "not-found"


def test_without_the_master_key_texts_are_not_filed(tmp_path: Path) -> None:
    code, refused = run(
        tmp_path, "objection", "file", "BR-0000000000000000", "--department", "BJ-HRSS",
        "--reason", "r", env={},
    )  # fmt: skip
    assert code == 1 and "master key" in refused["error"]["message"]


def test_the_lifecycle_line_counts_appeals_flagged_past_their_limit() -> None:
    from datetime import date

    from api.cli.lifecycle import _line

    summary = {
        "department": "BJ-HRSS",
        "expired": [],
        "overdue": 0,
        "deadlines_moved": 0,
        "objections_overdue": 2,
        "repairs_overdue": 1,
    }
    line = _line(summary, date(2026, 12, 7))
    assert "2 objections and 1 repair applications past their limit" in line
