"""Loads the committed contract artifacts, so the runtime needs neither Node nor solc."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, TypedDict

from ledger.errors import CompilerError

CONTRACT_NAME = "CommitmentLedger"
ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
ARTIFACT_PATH = ARTIFACTS_DIR / f"{CONTRACT_NAME}.json"
# The multi-signature admin: Safe 1.4.1 (npm @safe-global/safe-contracts), built by our own
# toolchain. SafeL2 is the Safe that also logs each executed transaction with its signatures,
# so who approved an admin act can be read from the chain alone.
SAFE_SINGLETON_NAME = "SafeL2"
SAFE_FACTORY_NAME = "SafeProxyFactory"
SAFE_CONTRACT_NAMES = (SAFE_SINGLETON_NAME, SAFE_FACTORY_NAME)


class Artifact(TypedDict):
    """The compiled contract as committed in `ledger/artifacts/`."""

    contractName: str
    sourceName: str
    compiler: dict[str, Any]
    sourcesHash: str
    sources: dict[str, str]
    abi: list[dict[str, Any]]
    bytecode: str
    deployedBytecode: str


@cache
def load_artifact(path: Path = ARTIFACT_PATH) -> Artifact:
    """The committed artifact; CompilerError when it is missing (run `make artifact`)."""
    try:
        data: Artifact = json.loads(path.read_text())
    except FileNotFoundError:
        raise CompilerError(f"no contract artifact at {path}: run `make artifact`") from None
    return data


def artifact_path(name: str) -> Path:
    """Where the committed artifact of contract `name` lives."""
    return ARTIFACTS_DIR / f"{name}.json"


def load_safe_artifact(name: str) -> Artifact:
    """The committed artifact of one of the Safe contracts (SAFE_CONTRACT_NAMES)."""
    if name not in SAFE_CONTRACT_NAMES:
        raise CompilerError(f"no Safe artifact named {name!r}: one of {SAFE_CONTRACT_NAMES}")
    return load_artifact(artifact_path(name))
