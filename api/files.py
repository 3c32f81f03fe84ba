"""Reading the files the command line is given: JSON documents, commitments, deployments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ledger import Commitment, InvalidDocumentError, SignedCommitment, load_json_bytes

MAX_DOCUMENT_BYTES = 1 << 20  # a commitment is a few KB; refuse anything absurd
DEFAULT_DEPLOYMENT = Path("data/deployment.json")
DEFAULT_PROOFS = Path("data/proofs")


def read_json_file(path: Path) -> object:
    """Parse a JSON file strictly; InvalidDocumentError names the file and the problem."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidDocumentError(f"{path}: {exc.strerror}") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise InvalidDocumentError(f"{path}: larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        return load_json_bytes(raw)
    except InvalidDocumentError as exc:
        raise InvalidDocumentError(f"{path}: {exc}") from None


def read_commitment(path: Path) -> Commitment | SignedCommitment:
    """A signed commitment (`{"document", "signature"}`) or a bare commitment document."""
    obj = read_json_file(path)
    try:
        if isinstance(obj, dict) and "signature" in obj:
            return SignedCommitment.from_json_obj(obj)
        return Commitment.from_json_obj(obj)
    except InvalidDocumentError as exc:
        raise InvalidDocumentError(f"{path}: {exc}") from None


def read_signed(path: Path) -> SignedCommitment:
    """A signed commitment; a bare document is refused with a hint."""
    document = read_commitment(path)
    if not isinstance(document, SignedCommitment):
        raise InvalidDocumentError(f"{path}: not signed; sign it first with `commitledger sign`")
    return document


def read_deployment(path: Path) -> dict[str, Any]:
    """The deployment file written by `deploy`."""
    obj = read_json_file(path)
    if not isinstance(obj, dict) or not {"rpc", "contract", "chain_id"} <= set(obj):
        raise InvalidDocumentError(f"{path}: not a deployment file (run `commitledger deploy`)")
    return obj
