"""Loads the committed CommitmentLedger artifact, so the runtime needs neither Node nor solc."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, TypedDict

from ledger.errors import CompilerError

CONTRACT_NAME = "CommitmentLedger"
ARTIFACT_PATH = Path(__file__).resolve().parent / "artifacts" / f"{CONTRACT_NAME}.json"


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
