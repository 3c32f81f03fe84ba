"""Drive `commitledger` in-process for the `verify` command's tests: key files, results."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from api.cli import app
from ledger import MASTER_KEY_ENV
from support.cli import one_json, one_line

RUNNER = CliRunner()
HRSS = "BJ-HRSS"
VERIFY_ON = "2026-11-27"  # sample records run to 2026-10; commitments are signed in 2026-11
AFTER_RECTIFICATION = "2027-01-05"  # past every HRSS rectification window of VERIFY_ON


def cli(*args: object, env: Mapping[str, str | None] | None = None) -> Result:
    """Run `commitledger ARGS` in-process, never with the caller's master key or store."""
    base: dict[str, str | None] = {
        "COLUMNS": "1000",
        MASTER_KEY_ENV: None,
        "COMMITLEDGER_STORE": None,
    }
    return RUNNER.invoke(app, [str(a) for a in args], env={**base, **(env or {})})


def explain(result: Result) -> str:
    return f"exit {result.exit_code}\nstdout: {result.stdout!r}\nstderr: {result.stderr!r}"


def ok_json(result: Result) -> Any:
    assert result.exit_code == 0, explain(result)
    return one_json(result.stdout)


def bad_input(result: Result, *, json_out: bool = False, code: int = 2) -> str:
    """Exit 2 (or `code`) with one line on stderr (or one JSON document on stdout); the message."""
    assert result.exit_code == code, explain(result)
    if json_out:
        document = one_json(result.stdout)
        assert document["ok"] is False
        message: str = document["error"]["message"]
        return message
    assert result.stdout == ""
    return one_line(result.stderr)


def write_keys(directory: Path) -> dict[str, Path]:
    """Key files as `keys new` writes them: accounts, a report key, a master key."""
    made = {
        "admin": "ethereum",
        "registrar": "ethereum",
        "verifier": "ethereum",
        "report": "ed25519",
        "master": "master",
    }
    paths = {}
    for name, kind in made.items():
        path = directory / f"{name}.key"
        ok_json(cli("keys", "new", "--kind", kind, "--out", path, "--json"))
        paths[name] = path
    return paths


def run_args(
    keys: dict[str, Path], deployment: Path, store: str, *more: object, all_manual: bool = True
) -> list[object]:
    """`verify run` with the keys of `write_keys`, then `more`; `--all-manual` unless told
    (beside data sources it changes nothing; without them a run starts only with it)."""
    return [
        "verify",
        "run",
        "--key",
        keys["verifier"],
        "--report-key",
        keys["report"],
        "--master-key-file",
        keys["master"],
        "--deployment",
        deployment,
        "--store",
        store,
        *(["--all-manual"] if all_manual else []),
        *more,
    ]
