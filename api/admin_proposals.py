"""The admin proposal file: one Safe transaction and its owners' approvals.

The transaction is an admin act on the ledger, or a change of the Safe's own owners or
threshold (a call of the Safe itself, `OwnerChange`).

Owners pass the file around and each signs on their own machine (`commitledger admin
approve`); whoever executes it collects the file. Nothing in the file is trusted as
written: the SafeTx hash is recomputed from its fields, the act is decoded from the call
data (the readable `action` is only a check of that), and each signature must recover to
the owner it names.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from ledger import (
    AdminCall,
    Execution,
    InvalidDocumentError,
    OwnerChange,
    OwnerEvent,
    OwnerSignature,
    SafeError,
    SafeTx,
    checked_signatures,
    decode_admin_call,
    decode_owner_change,
    sign_safe_tx,
)

SCHEMA = "commitledger/admin-proposal/1"
MAX_FILE_BYTES = 64 * 1024
MAX_SIGNATURES = 50
_TX_FIELDS = ("to", "value", "data", "operation", "nonce")
SafeAction: TypeAlias = AdminCall | OwnerChange
# An owner change's fields as the JSON names them.
_OWNER_FIELDS = (
    ("owner", "owner"),
    ("previous", "previous_owner"),
    ("new_owner", "new_owner"),
    ("threshold", "threshold"),
)


@dataclass(frozen=True)
class Proposal:
    """A Safe transaction wrapping one admin act or owner change, with the approvals
    gathered so far."""

    tx: SafeTx
    signatures: tuple[OwnerSignature, ...] = field(default=())

    @property
    def action(self) -> SafeAction:
        """What the transaction performs, decoded from its call data: a change of the Safe's
        owners when it calls the Safe itself, else an admin act on the ledger."""
        return decoded_action(self.tx)

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


def decoded_action(tx: SafeTx) -> SafeAction:
    """The act `tx` performs: an owner change when it calls its own Safe, else a ledger act;
    SafeError for call data that are neither."""
    if tx.to == tx.safe:
        return decode_owner_change(tx.data)
    return decode_admin_call(tx.data)


def action_json(call: SafeAction) -> dict[str, Any]:
    """An act in JSON: its function and the arguments it takes (hashes as 0x-hex)."""
    shown: dict[str, Any] = {"function": call.function}
    if isinstance(call, OwnerChange):
        for name, key in _OWNER_FIELDS:
            if getattr(call, name) is not None:
                shown[key] = getattr(call, name)
        return shown
    for name in ("role", "account", "department", "commitment", "evidence"):
        value = getattr(call, name)
        if value is not None:
            shown[name] = "0x" + value.hex() if isinstance(value, bytes) else value
    return shown


def described(call: SafeAction) -> dict[str, Any]:
    """`action_json` with readable words: the department's code where the catalog knows it,
    an owner change in a sentence."""
    shown = action_json(call)
    if isinstance(call, OwnerChange):
        shown["summary"] = call.in_words()
        return shown
    if call.department is not None:
        from verifier import default_catalog
        from verifier.feed import department_codes

        code = department_codes(default_catalog().departments()).get(call.department)
        if code is not None:
            shown["department_code"] = code
    return shown


def executed_acts(
    executions: Iterable[Execution], ledger: str, owner_events: Sequence[OwnerEvent] = ()
) -> list[dict[str, Any]]:
    """The Safe's executed transactions as JSON, oldest first: each act decoded when it is
    one of the ledger's or a change of the Safe's owners (else only its target), with the
    owners whose approvals counted. An owner change also lists what the Safe's own events
    (`owner_events`) say it changed: owners added and removed, the new threshold."""
    ordered = list(executions)
    changes = _changes_by_execution(ordered, owner_events)
    acts = []
    for execution in ordered:
        act: dict[str, Any] = {"to": execution.tx.to}
        if execution.tx.to in (ledger, execution.tx.safe):
            # a call of the ledger or the Safe that is no act of ours shows its target only
            with suppress(SafeError):
                act = described(decoded_action(execution.tx))
        entry: dict[str, Any] = {
            "transaction": "0x" + execution.transaction.hex(),
            "block": execution.block_number,
            "nonce": execution.tx.nonce,
            "safe_tx_hash": "0x" + execution.tx.hash().hex(),
            "action": act,
            "approved_by": list(execution.approvers),
        }
        if execution.tx.to == execution.tx.safe:
            entry["changes"] = changes.get(id(execution), [])
        acts.append(entry)
    return acts


def _changes_by_execution(
    executions: Sequence[Execution], owner_events: Sequence[OwnerEvent]
) -> dict[int, list[dict[str, Any]]]:
    """Each owner event given to the execution it happened in: the last one logged before it
    in the same transaction (SafeL2 logs SafeMultiSigTransaction before running the call)."""
    found: dict[int, list[dict[str, Any]]] = {}
    for event in owner_events:
        before = [
            e
            for e in executions
            if e.transaction == event.transaction and e.log_index < event.log_index
        ]
        if before:
            owner = max(before, key=lambda e: e.log_index)
            found.setdefault(id(owner), []).append({event.kind: event.value})
    return found


def new_proposal(safe: str, chain_id: int, ledger: str, call: SafeAction, nonce: int) -> Proposal:
    """A proposal, not yet approved, of `call` through `safe` at `nonce`: an admin act
    calls `ledger`, an owner change calls the Safe itself."""
    to = safe if isinstance(call, OwnerChange) else ledger
    return Proposal(SafeTx(safe, chain_id, to, call.data(), nonce))


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
