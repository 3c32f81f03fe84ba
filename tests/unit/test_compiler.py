"""Compiler settings, the committed artifact, and its staleness check (needs node_modules)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ledger import (
    ARTIFACT_PATH,
    CONTRACT_SOURCE,
    PROJECT_ROOT,
    compiler,
    compiler_settings,
    keccak256,
    load_artifact,
    render,
    stale_fields,
    standard_json_input,
)

ARTIFACT_KEYS = {
    "abi",
    "bytecode",
    "compiler",
    "contractName",
    "deployedBytecode",
    "sourceName",
    "sources",
    "sourcesHash",
}


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ARTIFACT_PATH.read_text())
    return data


# ---------------------------------------------------------------------- settings


def test_settings_come_from_foundry_toml() -> None:
    settings = compiler_settings()
    assert settings["evmVersion"] == "cancun"  # solc's default (osaka) is beyond eth-tester
    assert settings["optimizer"] == {"enabled": True, "runs": 200}
    assert settings["version"] == "0.8.37"
    assert "@openzeppelin/=node_modules/@openzeppelin/" in settings["remappings"]


def test_settings_follow_a_different_foundry_toml(tmp_path: Path) -> None:
    toml = tmp_path / "foundry.toml"
    toml.write_text(
        "[profile.default]\n"
        'solc_version = "0.8.30"\n'
        'evm_version = "shanghai"\n'
        "optimizer = false\n"
        "optimizer_runs = 7\n"
        'remappings = ["a/=b/"]\n'
    )
    assert compiler_settings(toml) == {
        "version": "0.8.30",
        "evmVersion": "shanghai",
        "optimizer": {"enabled": False, "runs": 7},
        "remappings": ["a/=b/"],
    }


def test_standard_json_input_carries_the_settings() -> None:
    settings = compiler_settings()
    data = standard_json_input(settings)
    assert data["language"] == "Solidity"
    assert list(data["sources"]) == [CONTRACT_SOURCE]
    assert data["settings"]["evmVersion"] == "cancun"
    assert data["settings"]["optimizer"] == {"enabled": True, "runs": 200}
    assert data["settings"]["remappings"] == settings["remappings"]


# ---------------------------------------------------------------------- the committed artifact


def test_committed_artifact_shape(committed: dict[str, Any]) -> None:
    assert set(committed) == ARTIFACT_KEYS
    assert committed["contractName"] == "CommitmentLedger"
    assert committed["sourceName"] == CONTRACT_SOURCE
    assert committed["compiler"]["version"].startswith("0.8.37+commit.")
    assert committed["compiler"]["settings"] == compiler_settings()
    for key in ("bytecode", "deployedBytecode"):
        code = committed[key]
        assert code.startswith("0x")
        assert len(code) > 1000
        bytes.fromhex(code[2:])  # valid hex
    # the creation code carries the runtime code (the contract has no immutables)
    assert committed["deployedBytecode"][2:] in committed["bytecode"]
    names = {e.get("name") for e in committed["abi"]}
    for name in (
        "anchor",
        "anchorBatch",
        "isAnchored",
        "recordOutcome",
        "recordOutcomes",
        "repair",
        "withdraw",
        "statusOf",
        "batchOf",
        "NotAnchored",
        "OutcomeRecorded",
        "BreachRecorded",
    ):
        assert name in names
    assert load_artifact() == committed


def test_committed_artifact_sources_hash(committed: dict[str, Any]) -> None:
    sources = committed["sources"]
    assert CONTRACT_SOURCE in sources
    assert "node_modules/@openzeppelin/contracts/access/AccessControl.sol" in sources
    assert "node_modules/@openzeppelin/contracts/utils/cryptography/MerkleProof.sol" in sources
    # each recorded source hash matches the file on disk
    for path, digest in sources.items():
        disk = PROJECT_ROOT / path
        assert "0x" + keccak256(disk.read_bytes()).hex() == digest, path
    expected = "0x" + keccak256(json.dumps(sources, sort_keys=True).encode()).hex()
    assert committed["sourcesHash"] == expected


def test_committed_artifact_is_rendered_stably(committed: dict[str, Any]) -> None:
    assert ARTIFACT_PATH.read_text() == render(committed)


# ---------------------------------------------------------------------- staleness


def test_committed_artifact_is_not_stale() -> None:
    assert stale_fields() == []  # compiles afresh


def test_modified_copy_is_stale(tmp_path: Path, committed: dict[str, Any]) -> None:
    modified = copy.deepcopy(committed)
    code = modified["deployedBytecode"]
    modified["deployedBytecode"] = code[:-2] + ("00" if code[-2:] != "00" else "01")
    modified["abi"] = [e for e in modified["abi"] if e.get("name") != "repair"]
    path = tmp_path / "CommitmentLedger.json"
    path.write_text(render(modified))
    assert stale_fields(path) == ["abi", "deployedBytecode"]  # compiles afresh


def test_stale_field_names(
    tmp_path: Path, committed: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the comparison alone: a fresh compilation equals the committed artifact (tested above)
    monkeypatch.setattr(compiler, "compile_artifact", lambda: copy.deepcopy(committed))
    path = tmp_path / "a.json"

    other_settings = copy.deepcopy(committed)
    other_settings["compiler"]["settings"]["optimizer"]["runs"] = 1
    other_settings["sourcesHash"] = "0x" + "00" * 32
    path.write_text(render(other_settings))
    assert stale_fields(path) == ["compiler", "sourcesHash"]

    missing_key = copy.deepcopy(committed)
    del missing_key["bytecode"]
    missing_key["extra"] = 1
    path.write_text(json.dumps(missing_key))
    assert stale_fields(path) == ["bytecode", "extra"]

    assert stale_fields(tmp_path / "absent.json") == ["<missing or unreadable artifact>"]
    path.write_text("{not json")
    assert stale_fields(path) == ["<missing or unreadable artifact>"]
