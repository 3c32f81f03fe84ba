"""Compiles the contracts via py-solc-x and scripts/solc; writes and checks their artifacts.

CommitmentLedger comes from contracts/; the Safe admin's contracts (SafeL2 and its proxy
factory) from npm's @safe-global/safe-contracts 1.4.1, under the same compiler settings.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from ledger.artifact import (
    ARTIFACT_PATH,
    CONTRACT_NAME,
    SAFE_FACTORY_NAME,
    SAFE_SINGLETON_NAME,
    artifact_path,
)
from ledger.canonical import keccak256
from ledger.errors import CompilerError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONTRACT_SOURCE = "contracts/CommitmentLedger.sol"
SOLC_WRAPPER = PROJECT_ROOT / "scripts" / "solc"
FOUNDRY_TOML = PROJECT_ROOT / "foundry.toml"
_SAFE_PACKAGE = "node_modules/@safe-global/safe-contracts/contracts"
# Each Safe contract and its source, compiled as it stands in the package (no edits).
SAFE_SOURCES = {
    SAFE_SINGLETON_NAME: f"{_SAFE_PACKAGE}/SafeL2.sol",
    SAFE_FACTORY_NAME: f"{_SAFE_PACKAGE}/proxies/SafeProxyFactory.sol",
}


def compiler_settings(foundry_toml: Path = FOUNDRY_TOML) -> dict[str, Any]:
    """The solc settings, read from foundry.toml so that forge and Python agree."""
    profile = tomllib.loads(foundry_toml.read_text())["profile"]["default"]
    return {
        "version": profile["solc_version"],
        "evmVersion": profile["evm_version"],
        "optimizer": {
            "enabled": bool(profile["optimizer"]),
            "runs": int(profile["optimizer_runs"]),
        },
        "remappings": list(profile["remappings"]),
    }


def standard_json_input(
    settings: dict[str, Any], source: str = CONTRACT_SOURCE, name: str = CONTRACT_NAME
) -> dict[str, Any]:
    """The solc standard-JSON input for contract `name` in `source` under `settings`."""
    return {
        "language": "Solidity",
        "sources": {source: {"urls": [source]}},
        "settings": {
            "evmVersion": settings["evmVersion"],
            "optimizer": settings["optimizer"],
            "remappings": settings["remappings"],
            "outputSelection": {
                source: {name: ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
            },
        },
    }


def _with_contents(input_data: dict[str, Any]) -> dict[str, Any]:
    # Inline the entry source: solcjs has no file access of its own besides the import callback.
    for path in input_data["sources"]:
        input_data["sources"][path] = {"content": (PROJECT_ROOT / path).read_text()}
    return input_data


def _solc_version() -> str:
    import solcx.wrapper

    return solcx.wrapper.get_version_str_from_solc_binary(SOLC_WRAPPER)


def compile_artifact(source: str = CONTRACT_SOURCE, name: str = CONTRACT_NAME) -> dict[str, Any]:
    """Compile contract `name` (CommitmentLedger by default) and return the artifact that
    `ledger/artifacts/` holds."""
    import solcx  # only the build needs py-solc-x and Node

    if not SOLC_WRAPPER.exists() or not (PROJECT_ROOT / "node_modules" / "solc").exists():
        raise CompilerError("solc is not installed: run `make node_modules` (npm ci) first")
    settings = compiler_settings()
    input_data = _with_contents(standard_json_input(settings, source, name))
    try:
        output = solcx.compile_standard(
            input_data, base_path=str(PROJECT_ROOT), solc_binary=SOLC_WRAPPER
        )
    except solcx.exceptions.SolcError as exc:
        raise CompilerError(f"solc failed: {exc}") from exc
    contract = output["contracts"][source][name]
    sources = {path: _source_hash(path) for path in sorted(output["sources"])}
    return {
        "contractName": name,
        "sourceName": source,
        "compiler": {"version": _solc_version(), "settings": settings},
        "sourcesHash": "0x" + keccak256(json.dumps(sources, sort_keys=True).encode()).hex(),
        "sources": sources,
        "abi": contract["abi"],
        "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + contract["evm"]["deployedBytecode"]["object"],
    }


def _source_hash(path: str) -> str:
    return "0x" + keccak256((PROJECT_ROOT / path).read_bytes()).hex()


def render(artifact: dict[str, Any]) -> str:
    """The artifact as committed: stable key order, one trailing newline."""
    return json.dumps(artifact, indent=2, sort_keys=True) + "\n"


def write_artifact(path: Path = ARTIFACT_PATH) -> dict[str, Any]:
    """Compile and write the artifact; return it."""
    artifact = compile_artifact()
    path.write_text(render(artifact))
    return artifact


def stale_fields(path: Path = ARTIFACT_PATH) -> list[str]:
    """Compile afresh and name the artifact fields that differ from the committed file."""
    return _differing(compile_artifact(), path)


def _differing(fresh: dict[str, Any], path: Path) -> list[str]:
    try:
        committed = json.loads(path.read_text())
    except (OSError, ValueError):
        return ["<missing or unreadable artifact>"]
    keys = sorted(set(fresh) | set(committed))
    return [key for key in keys if fresh.get(key) != committed.get(key)]


def write_safe_artifacts() -> dict[str, dict[str, Any]]:
    """Compile and write the Safe contracts' artifacts; return them by contract name."""
    written = {}
    for name, source in SAFE_SOURCES.items():
        artifact = compile_artifact(source, name)
        artifact_path(name).write_text(render(artifact))
        written[name] = artifact
    return written


def stale_safe_fields() -> dict[str, list[str]]:
    """Compile the Safe contracts afresh; name, per contract, the fields that differ from
    its committed artifact (contracts whose artifact is current are left out)."""
    stale = {}
    for name, source in SAFE_SOURCES.items():
        fields = _differing(compile_artifact(source, name), artifact_path(name))
        if fields:
            stale[name] = fields
    return stale
