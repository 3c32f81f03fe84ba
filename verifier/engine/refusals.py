"""The contract's refusals of an outcome: which outcomes a refusal names, and why, in words."""

from __future__ import annotations

from collections.abc import Sequence

from ledger import ContractRevertError, OutcomeItem

# The contract's refusals of an outcome, in words (its custom error's name follows them).
_REASONS = {
    "NotAnchored": "the department's ledger holds no record of this commitment",
    "UnknownBatch": "the department's ledger holds no batch with this commitment's root",
    "InvalidProof": "the stored proof does not show the commitment in its batch",
    "InvalidProofLength": "the stored proof cannot belong to a batch of its size",
    "TransitionNotAllowed": "the commitment's status on chain does not allow this outcome",
    "UnknownOutcome": "not an outcome the contract knows",
    "ZeroHash": "a zero hash where the contract needs one",
}


def refusal_reason(error: ContractRevertError) -> str:
    """Why the contract refuses an outcome, in words, with its error's name."""
    words = _REASONS.get(error.error_name, "the contract refuses it")
    return f"{words} ({error.error_name})"


def named_by(
    refusal: ContractRevertError, items: Sequence[OutcomeItem]
) -> dict[int, ContractRevertError]:
    """The outcomes a refusal names: by commitment (its first value) or by batch root."""
    named = refusal.error_args[0] if refusal.error_args else None
    if not isinstance(named, bytes) or len(named) != 32:
        return {}
    if refusal.error_name == "UnknownBatch":
        return {i: refusal for i, item in enumerate(items) if item.root == named}
    return {i: refusal for i, item in enumerate(items) if item.commitment == named}
