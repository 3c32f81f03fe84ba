"""What `commitledger admin propose` makes of its options: an admin act on the ledger, or a
change of the Safe's own owners or threshold, each checked before anything is written (an
owner change against the Safe's owners and threshold as the chain reports them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from api.output import fail

if TYPE_CHECKING:
    from ledger import AdminCall, OwnerChange, SafeAdmin

ACTIONS = {
    "bind": "grantDepartmentRole",
    "grant": "grantRole",
    "revoke": "revokeRole",
    "correct": "correctBreach",
}
# Changes of the Safe's own owners and threshold: Safe transactions calling the Safe itself.
OWNER_ACTIONS = {
    "add-owner": "addOwnerWithThreshold",
    "remove-owner": "removeOwner",
    "swap-owner": "swapOwner",
    "change-threshold": "changeThreshold",
}


def ledger_act(
    action: str,
    role: str | None,
    account: str | None,
    department: str | None,
    commitment: str | None,
    evidence: str | None,
    as_json: bool,
) -> AdminCall:
    """The ledger act `action` (bind, grant, revoke, correct) with these options; a clear
    error and exit for a missing, extra or malformed one, or an unknown department."""
    from ledger import AdminCall, InvalidHashError, SafeError, department_id, to_hash32

    try:
        return AdminCall(
            ACTIONS[action],  # type: ignore[arg-type]
            role,  # type: ignore[arg-type]
            account,
            None if department is None else bytes(department_id(_known(department, as_json))),
            None if commitment is None else bytes(to_hash32(commitment)),
            None if evidence is None else bytes(to_hash32(evidence)),
        )
    except (SafeError, InvalidHashError) as exc:
        fail(str(exc), as_json=as_json)


def owner_change(
    safe: SafeAdmin,
    action: str,
    owner: str | None,
    new_owner: str | None,
    threshold: int | None,
    as_json: bool,
) -> OwnerChange:
    """The owner change asked for, checked against the Safe's owners and threshold as the
    chain reports them now (the previous owner in its list read from there too)."""
    from ledger import SafeError, plan_owner_change

    owners, current = safe.owners(), safe.threshold()
    try:
        return plan_owner_change(
            OWNER_ACTIONS[action],  # type: ignore[arg-type]
            safe=safe.address,
            owners=owners,
            threshold=current,
            owner=owner,
            new_owner=new_owner,
            new_threshold=threshold,
        )
    except SafeError as exc:
        fail(f"{exc}; nothing was written", as_json=as_json)


def _known(department: str, as_json: bool) -> str:
    from verifier import default_catalog

    codes = set(default_catalog().departments())
    if department not in codes:
        fail(
            f"unknown department {department!r}: one of {', '.join(sorted(codes))}", as_json=as_json
        )
    return department
