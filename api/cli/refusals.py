"""The contract's refusals in sentences: each custom error of CommitmentLedger.sol, explained."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ledger import ContractRevertError

# CommitmentLedger.Status, in the contract's order.
STATUSES = (
    "None",
    "Anchored",
    "Withdrawn",
    "Kept",
    "Mismatch",
    "NeedsManual",
    "Breached",
    "Repaired",
    "Expired",
    "Corrected",
)
GRANT_HINT = (
    "the governing office grants a department's roles with `commitledger deploy --department D "
    "--registrar-key K --verifier-key K` (grantDepartmentRole)"
)


def _hex(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


def _status(value: Any) -> str:
    if isinstance(value, int) and 0 <= value < len(STATUSES):
        return STATUSES[value]
    return f"status {value}"


def _role(value: Any) -> str:
    if isinstance(value, bytes):
        if value == bytes(32):
            return "admin (DEFAULT_ADMIN_ROLE)"
        from ledger import REGISTRAR_ROLE, VERIFIER_ROLE

        names = {bytes(REGISTRAR_ROLE): "registrar", bytes(VERIFIER_ROLE): "verifier"}
        if value in names:
            return f"{names[value]} ({names[value].upper()}_ROLE)"
    return f"role {_hex(value)}"


def _department(value: Any) -> str:
    if isinstance(value, bytes):
        from ledger import department_id
        from verifier import default_catalog

        for code in default_catalog().departments():
            if bytes(department_id(code)) == value:
                return code
    return _hex(value)


Sentence = Callable[[Sequence[Any]], str]

# One sentence per custom error: what was refused and why (the arguments as the contract
# gave them). OpenZeppelin's AccessControl errors come with the contract too.
SENTENCES: dict[str, Sentence] = {
    "ZeroHash": lambda a: "the contract refused a zero hash: a commitment hash or root is never 0",
    "EmptyBatch": lambda a: "the contract refused an empty batch: anchor at least one commitment",
    "AlreadyAnchored": lambda a: (
        f"commitment {_hex(a[0])} is already anchored by this department: nothing was sent "
        "again (`commitledger proof HASH` prints its proof)"
    ),
    "BatchAlreadyAnchored": lambda a: (
        f"this batch (root {_hex(a[0])}) is already anchored by this department: its "
        "commitments are on chain already"
    ),
    "UnknownBatch": lambda a: f"no batch with root {_hex(a[0])} is anchored on this contract",
    "NotAnchored": lambda a: (
        f"commitment {_hex(a[0])} is not anchored on this contract (neither singly nor shown "
        "in a batch): anchor it first"
    ),
    "InvalidProofLength": lambda a: (
        f"the Merkle proof has {a[0]} steps, but a batch of this size needs {a[1]} to {a[2]}"
    ),
    "InvalidProof": lambda a: (
        f"the Merkle proof does not show commitment {_hex(a[0])} in the batch with root "
        f"{_hex(a[1])}"
    ),
    "UnknownOutcome": lambda a: f"outcome code {a[0]} is not a status of this contract",
    "TransitionNotAllowed": lambda a: (
        f"commitment {_hex(a[0])} cannot go from {_status(a[1])} to {_status(a[2])}: the "
        "contract's status machine forbids that move"
    ),
    "AccountNotBound": lambda a: (
        f"account {_hex(a[0])} is bound to no department, so the contract refused it: {GRANT_HINT}"
    ),
    "AccountBoundElsewhere": lambda a: (
        f"account {_hex(a[0])} already serves department {_department(a[1])}; an account "
        "serves one department for life: make a new key for this one"
    ),
    "NoOutcomes": lambda a: "no outcomes to record: the contract refused an empty list",
    "AccessControlUnauthorizedAccount": lambda a: (
        f"account {_hex(a[0])} does not hold the {_role(a[1])} role on this contract, so the "
        f"contract refused it: {GRANT_HINT}"
    ),
    "AccessControlBadConfirmation": lambda a: (
        "the contract refused to renounce a role: only the account itself may renounce it"
    ),
}


def explain(error: ContractRevertError) -> str:
    """The contract's refusal as a sentence (its raw form when the error is not known)."""
    sentence = SENTENCES.get(error.error_name)
    if sentence is None:
        return str(error)
    try:
        return f"the contract refused: {sentence(error.error_args)}"
    except (IndexError, TypeError):  # arguments that did not decode: the raw form says more
        return str(error)
