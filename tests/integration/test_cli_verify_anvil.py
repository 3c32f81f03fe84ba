"""`commitledger verify run` and `verify breaches` end to end against anvil, in-process: one
chain across several invocations: deploy, submit, `pipeline run`, the sample data service on
loopback, `verify run`, `verify breaches`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from support.cli import closed_port, write_json
from support.dated_chain import DatedAnvil
from support.verify_cli import (
    AFTER_RECTIFICATION,
    HRSS,
    VERIFY_ON,
    bad_input,
    cli,
    explain,
    ok_json,
    run_args,
    write_keys,
)

from api import run_start
from api.demo import create_app, planted, running, sample_commitments
from ledger import AnvilNode, SigningKey, sign_commitment


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    """Key files as `keys new` writes them: accounts, a report key, a master key."""
    return write_keys(tmp_path)


@pytest.fixture
def dated_anvil(anvil_binary: None) -> Iterator[DatedAnvil]:
    """anvil whose clock starts on VERIFY_ON."""
    with DatedAnvil(date.fromisoformat(VERIFY_ON)) as node:
        yield node


def submit_and_anchor(
    documents: list[Any], tmp_path: Path, keys: dict[str, Path], store: str, deployment: Path
) -> None:
    paths = []
    for document in documents:
        signed = sign_commitment(document, SigningKey.generate("ed25519"))
        path = tmp_path / "in" / f"{document.code}.json"
        path.parent.mkdir(exist_ok=True)
        paths.append(write_json(path, signed.to_json_obj()))
    master = ("--master-key-file", keys["master"])
    accepted = ok_json(cli("submit", *paths, "--store", store, *master, "--json"))
    assert accepted["accepted"] == len(documents)
    anchored = ok_json(
        cli(
            "pipeline",
            "run",
            "--key",
            keys["registrar"],
            "--store",
            store,
            "--deployment",
            deployment,
            "--max-age",
            "0",
            "--until-idle",
            "--timeout",
            "60",
            "--json",
        )
    )
    assert anchored["pending"] == 0


@pytest.mark.usefixtures("restore_signals")
def test_verify_run_and_breaches_against_anvil(
    dated_anvil: DatedAnvil,
    tmp_path: Path,
    keys: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The story runs to a day after every rectification window; a run is dated the day it is
    # started on, which is the chain's (api.run_start): the command's clock and the node's
    # are moved there together.
    anvil = dated_anvil
    monkeypatch.setattr(run_start, "today", lambda: date.fromisoformat(VERIFY_ON))
    deployment = tmp_path / "deployment.json"
    ok_json(
        cli(
            "deploy",
            "--rpc",
            anvil.url,
            "--admin-key",
            keys["admin"],
            "--department",
            HRSS,
            "--registrar-key",
            keys["registrar"],
            "--verifier-key",
            keys["verifier"],
            "--fund",
            "--out",
            deployment,
            "--json",
        )
    )
    documents = list(sample_commitments(100, department=HRSS))
    kinds = [planted(d.applicant.id_number) for d in documents]
    assert kinds.count("mismatch") >= 1  # the samples plant some: the story needs one
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    submit_and_anchor(documents, tmp_path, keys, store, deployment)

    token_file = tmp_path / "token"
    token_file.write_text("sample-token\n")
    with running(create_app("sample-token")) as url:
        sources = ("--sources-url", url, "--sources-token-file", token_file)
        first = ok_json(
            cli(*run_args(keys, deployment, store, "--on", VERIFY_ON, *sources, "--json"))
        )
    assert first["department"] == HRSS  # from the deployment file
    assert first["examined"] == len(documents)
    assert first["recorded_on_chain"] == len(documents)
    assert sum(first["outcomes"].values()) == len(documents)
    assert first["outcomes"]["kept"] > 0
    assert first["outcomes"]["mismatch"] >= 1
    assert first["outcomes"]["needs_manual"] >= 1  # planted missing data: a person decides
    assert first["transactions"] >= 1
    assert first["gas_used"] > 0
    mismatches = first["outcomes"]["mismatch"]

    # Later, with nothing rectified: the mismatches are overdue and become proposed breaches:
    # the applicants are notified and may answer; nothing is published yet.
    anvil.move_to(date.fromisoformat(AFTER_RECTIFICATION))
    monkeypatch.setattr(run_start, "today", lambda: date.fromisoformat(AFTER_RECTIFICATION))
    # No data service is needed for that (and the one given is not there).
    gone = (
        "--sources-url",
        f"http://127.0.0.1:{closed_port()}",
        "--sources-token-file",
        token_file,
    )
    later = ok_json(
        cli(*run_args(keys, deployment, store, "--on", AFTER_RECTIFICATION, *gone, "--json"))
    )
    assert later["examined"] == 0
    assert len(later["proposed"]) == mismatches
    assert later["breaches"] == []
    assert first["breaches"] == []  # a false finding is proposed too, never published at once
    assert len(first["proposed"]) == first["outcomes"].get("false", 0)

    listed = ok_json(
        cli("verify", "breaches", "--store", store, "--on", AFTER_RECTIFICATION, "--json")
    )
    assert listed["total"] == 0  # published only after notice and defence
    text = json.dumps(later, ensure_ascii=False)
    assert not any(d.applicant.id_number in text for d in documents)

    # More commitments while the data service is down: NEEDS_MANUAL, never a crash or a breach.
    # Serials after the first hundred: a commitment code is its department's once.
    more = list(sample_commitments(105, seed=99, department=HRSS))[100:]
    submit_and_anchor(more, tmp_path, keys, store, deployment)
    down = ok_json(
        cli(*run_args(keys, deployment, store, "--on", AFTER_RECTIFICATION, *gone, "--json"))
    )
    assert down["examined"] == len(more)
    assert down["outcomes"] == {"needs_manual": len(more)}
    assert down["breaches"] == []

    # For people: a table on stdout, nothing left to do.
    again = cli(*run_args(keys, deployment, store, "--on", AFTER_RECTIFICATION, *gone))
    assert again.exit_code == 0, explain(again)
    assert "Verification of BJ-HRSS" in again.stdout


def test_verify_run_refuses_an_account_without_the_verifier_role(
    anvil: AnvilNode, tmp_path: Path, keys: dict[str, Path]
) -> None:
    deployment = tmp_path / "deployment.json"
    ok_json(
        cli(
            "deploy",
            "--rpc",
            anvil.url,
            "--admin-key",
            keys["admin"],
            "--department",
            HRSS,
            "--registrar-key",
            keys["registrar"],
            "--fund",
            "--out",
            deployment,
            "--json",
        )
    )
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    message = bad_input(cli(*run_args(keys, deployment, store)))
    assert "is not a verifier of BJ-HRSS" in message
