"""The admin proposal file: one Safe transaction on the ledger and its owners' approvals.

Owners pass the file around and each signs on their own machine (`commitledger admin
approve`); whoever executes it collects the file. Nothing in the file is trusted as
written: the SafeTx hash is recomputed from its fields, the act is decoded from the call
data (the readable `action` is only a check of that), and each signature must recover to
the owner it names.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger import (
    AdminCall,
    Execution,
    InvalidDocumentError,
    OwnerSignature,
    SafeError,
    SafeTx,
    checked_signatures,
    decode_admin_call,
    sign_safe_tx,
)

SCHEMA = "commitledger/admin-proposal/1"
MAX_FILE_BYTES = 64 * 1024
MAX_SIGNATURES = 50
_TX_FIELDS = ("to", "value", "data", "operation", "nonce")


@dataclass(frozen=True)
class Proposal:
    """A Safe transaction wrapping one admin act, with the approvals gathered so far."""

    tx: SafeTx
    signatures: tuple[OwnerSignature, ...] = field(default=())

    @property
    def action(self) -> AdminCall:
        """The admin act the transaction performs (decoded from its call data)."""
        return decode_admin_call(self.tx.data)

    def approvers(self) -> list[str]:
        """The owners who approved, in ascending address order."""
        return [s.owner for s in self.signatures]

    def approved_by(self, signature: OwnerSignature) -> Proposal:
        """This proposal with one more approval (a second one by the same owner replaces
        the first); SafeError when the signature is not its owner's over this hash."""
        others = [s for s in self.signatures if s.owner != signature.owner]
        return Proposal(self.tx, tuple(checked_signatures(self.tx, [*others, signature])))

    def to_json_obj(self, describe: dict[str, Any] | None = None) -> dict[str, Any]:
        """The file's JSON form; `describe` adds readable words on the act (not trusted)."""
        shown = action_json(self.action)
        return {
            "schema": SCHEMA,
            "chain_id": self.tx.chain_id,
            "safe": self.tx.safe,
            "safe_tx": {
                "to": self.tx.to,
                "value": str(self.tx.value),
                "data": "0x" + self.tx.data.hex(),
                "operation": self.tx.operation,
                "nonce": self.tx.nonce,
            },
            "safe_tx_hash": "0x" + self.tx.hash().hex(),
            "action": {**shown, **(describe or {})},
            "approvals": [
                {"owner": s.owner, "signature": "0x" + s.signature.hex()} for s in self.signatures
            ],
        }


def action_json(call: AdminCall) -> dict[str, Any]:
    """An admin act in JSON: its function and the arguments it takes (hashes as 0x-hex)."""
    shown: dict[str, Any] = {"function": call.function}
    for name in ("role", "account", "department", "commitment", "evidence"):
        value = getattr(call, name)
        if value is not None:
            shown[name] = "0x" + value.hex() if isinstance(value, bytes) else value
    return shown


def described(call: AdminCall) -> dict[str, Any]:
    """`action_json` with readable words: the department's code where the catalog knows it."""
    shown = action_json(call)
    if call.department is not None:
        from verifier import default_catalog
        from verifier.feed import department_codes

        code = department_codes(default_catalog().departments()).get(call.department)
        if code is not None:
            shown["department_code"] = code
    return shown


def executed_acts(executions: Iterable[Execution], ledger: str) -> list[dict[str, Any]]:
    """The Safe's executed transactions as JSON, oldest first: each act decoded when it is
    one of the ledger's (else only its target), with the owners whose approvals counted."""
    acts = []
    for execution in executions:
        act: dict[str, Any] = {"to": execution.tx.to}
        if execution.tx.to == ledger:
            # a call of the ledger that is no admin act is shown by its target only
            with suppress(SafeError):
                act = described(decode_admin_call(execution.tx.data))
        acts.append(
            {
                "transaction": "0x" + execution.transaction.hex(),
                "block": execution.block_number,
                "nonce": execution.tx.nonce,
                "safe_tx_hash": "0x" + execution.tx.hash().hex(),
                "action": act,
                "approved_by": list(execution.approvers),
            }
        )
    return acts


def new_proposal(safe: str, chain_id: int, ledger: str, call: AdminCall, nonce: int) -> Proposal:
    """A proposal, not yet approved, of `call` on `ledger` through `safe` at `nonce`."""
    return Proposal(SafeTx(safe, chain_id, ledger, call.data(), nonce))


def approve(proposal: Proposal, owner: Any, *, eth_sign: bool = False) -> Proposal:
    """`proposal` signed by `owner` (a LocalAccount) over its recomputed hash."""
    return proposal.approved_by(sign_safe_tx(owner, proposal.tx, eth_sign=eth_sign))


def read_proposal(path: Path) -> Proposal:
    """A proposal file, every part checked; InvalidDocumentError names what is wrong."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidDocumentError(f"{path}: cannot read the proposal ({exc.strerror})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise InvalidDocumentError(f"{path}: over {MAX_FILE_BYTES} bytes, not a proposal")
    try:
        return proposal_from_json(json.loads(raw))
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidDocumentError(f"{path}: not a valid admin proposal: {exc}") from None


def proposal_from_json(obj: Any) -> Proposal:
    """A proposal from its JSON form; ValueError (SafeError) on any inconsistency."""
    if not isinstance(obj, dict) or obj.get("schema") != SCHEMA:
        raise SafeError(f"schema must be {SCHEMA!r}")
    body = obj["safe_tx"]
    if not isinstance(body, dict) or set(body) != set(_TX_FIELDS):
        raise SafeError(f"safe_tx holds exactly {', '.join(_TX_FIELDS)}")
    tx = SafeTx(
        safe=obj["safe"],
        chain_id=_integer(obj["chain_id"], "chain_id"),
        to=body["to"],
        data=_hex(body["data"], "data"),
        nonce=_integer(body["nonce"], "nonce"),
        value=_integer(body["value"], "value"),
        operation=_integer(body["operation"], "operation"),
    )
    if obj.get("safe_tx_hash") != "0x" + tx.hash().hex():
        raise SafeError("safe_tx_hash does not match the transaction (the file was altered)")
    proposal = Proposal(tx)
    action = obj.get("action")
    expected = proposal.to_json_obj()["action"]
    if not isinstance(action, dict) or any(action.get(k) != v for k, v in expected.items()):
        raise SafeError("the action described does not match the call data")
    approvals = obj.get("approvals", [])
    if not isinstance(approvals, list) or len(approvals) > MAX_SIGNATURES:
        raise SafeError(f"approvals is a list of at most {MAX_SIGNATURES}")
    signatures = [
        OwnerSignature(str(item["owner"]), _hex(item["signature"], "signature"))
        for item in approvals
    ]
    return Proposal(tx, tuple(checked_signatures(tx, signatures)))


def write_proposal(path: Path, proposal: Proposal, describe: dict[str, Any] | None = None) -> None:
    """Write the proposal file (replacing it whole, so a reader never sees half of it)."""
    text = json.dumps(proposal.to_json_obj(describe), indent=2) + "\n"
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise SafeError(f"{name} must be an integer")
    if isinstance(value, str) and value.isdigit() and len(value) <= 78:
        return int(value)
    if isinstance(value, int):
        return value
    raise SafeError(f"{name} must be an integer")


def _hex(value: Any, name: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise SafeError(f"{name} must be 0x-hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise SafeError(f"{name} must be 0x-hex") from None
