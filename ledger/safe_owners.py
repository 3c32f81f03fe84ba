"""Changing the admin Safe's owners and threshold: its OwnerManager calls, checked first.

A consortium changes: a department joins (its owner key is added, the threshold raised), a
department leaves (its owner removed), a key is replaced (swapped), the threshold moved.
Each is a Safe transaction on the Safe itself (Safe 1.4.1's `addOwnerWithThreshold`,
`removeOwner`, `swapOwner`, `changeThreshold`, callable only by the Safe), approved by M
owners like any admin act. `plan_owner_change` checks a change against the Safe's owners
and threshold as the chain reports them and fills in what the Safe's linked list needs
(the owner before the one removed or replaced), so nobody is asked for it and nothing the
Safe would refuse is ever proposed. Decoding is as strict as for the ledger's acts: owners
sign call data they did not write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from eth_abi.abi import encode as abi_encode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import is_address, is_checksum_address, to_checksum_address

from ledger.admin_calls import decode_selected
from ledger.errors import SafeError

OwnerFunction = Literal["addOwnerWithThreshold", "removeOwner", "swapOwner", "changeThreshold"]
# The head of Safe's owner list (OwnerManager.SENTINEL_OWNERS): the "previous owner" of the first.
SENTINEL_OWNERS = "0x0000000000000000000000000000000000000001"
ZERO_ADDRESS = "0x" + "00" * 20
MAX_SAFE_OWNERS = 50  # as many as `admin handover` deploys a Safe with
# Each function's parameters, in order: (OwnerChange field, ABI type).
_PARAMETERS: dict[OwnerFunction, tuple[tuple[str, str], ...]] = {
    "addOwnerWithThreshold": (("owner", "address"), ("threshold", "uint256")),
    "removeOwner": (("previous", "address"), ("owner", "address"), ("threshold", "uint256")),
    "swapOwner": (("previous", "address"), ("owner", "address"), ("new_owner", "address")),
    "changeThreshold": (("threshold", "uint256"),),
}
_SELECTORS = {
    function_signature_to_4byte_selector(f"{name}({','.join(t for _, t in params)})"): name
    for name, params in _PARAMETERS.items()
}
_FIELDS = ("previous", "owner", "new_owner", "threshold")


@dataclass(frozen=True)
class OwnerChange:
    """One change of the Safe's owners or threshold; the fields its function takes are set.

    `owner` is the owner added, removed or replaced; `previous` the owner before it in the
    Safe's list (the sentinel for the first); `new_owner` the one that replaces it;
    `threshold` the number of approvals needed afterwards.
    """

    function: OwnerFunction
    owner: str | None = None
    previous: str | None = None
    new_owner: str | None = None
    threshold: int | None = None

    def __post_init__(self) -> None:
        if self.function not in _PARAMETERS:
            raise SafeError(f"{self.function!r} is not a change of the Safe's owners")
        taken = {name for name, _ in _PARAMETERS[self.function]}
        for name in _FIELDS:
            if (getattr(self, name) is not None) != (name in taken):
                raise SafeError(
                    f"{self.function} takes {', '.join(sorted(taken))}: {name} is "
                    + ("missing" if name in taken else "not one of them")
                )
        for name in ("owner", "previous", "new_owner"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, str) or not is_address(value):
                raise SafeError(f"{name} is not an address: {value!r}")
            value = to_checksum_address(value)
            if value == ZERO_ADDRESS or (value == SENTINEL_OWNERS and name != "previous"):
                raise SafeError(f"{value} cannot be an owner of a Safe")
            object.__setattr__(self, name, value)
        number = self.threshold
        if number is not None and (
            isinstance(number, bool)
            or not isinstance(number, int)
            or not 1 <= number <= MAX_SAFE_OWNERS
        ):
            raise SafeError(f"the threshold is an integer from 1 to {MAX_SAFE_OWNERS}")

    def data(self) -> bytes:
        """The call data of this change on the Safe."""
        params = _PARAMETERS[self.function]
        types = [t for _, t in params]
        selector = function_signature_to_4byte_selector(f"{self.function}({','.join(types)})")
        return selector + abi_encode(types, [getattr(self, name) for name, _ in params])

    def owners_after(self, owners: Sequence[str]) -> list[str]:
        """The Safe's owner list once this change has run on `owners` (its list order)."""
        if self.function == "addOwnerWithThreshold":
            return [str(self.owner), *owners]  # Safe inserts a new owner at the head
        if self.function == "removeOwner":
            return [o for o in owners if o != self.owner]
        if self.function == "swapOwner":
            return [str(self.new_owner) if o == self.owner else o for o in owners]
        return list(owners)

    def in_words(self) -> str:
        """What the change does, for owners to read before they sign."""
        keep = f"; {self.threshold} approvals needed from then on"
        if self.function == "addOwnerWithThreshold":
            return f"add {self.owner} as an owner of the Safe{keep}"
        if self.function == "removeOwner":
            return f"remove {self.owner} from the Safe's owners{keep}"
        if self.function == "swapOwner":
            return f"replace the owner {self.owner} by {self.new_owner}"
        return f"{self.threshold} approvals needed from then on (the owners stay)"


def decode_owner_change(data: bytes) -> OwnerChange:
    """The owner change `data` encodes; SafeError for anything else (so nobody signs it)."""
    function, values = decode_selected(
        data, _SELECTORS, _PARAMETERS, "a change of the Safe's owners"
    )
    params = _PARAMETERS[function]
    fields: dict[str, Any] = {
        name: int(value) if kind == "uint256" else str(value)
        for (name, kind), value in zip(params, values, strict=True)
    }
    change = OwnerChange(function, **fields)
    if change.data() != data:  # one encoding only: what owners read is exactly what runs
        raise SafeError(f"call data of {function} are not in canonical form")
    return change


def plan_owner_change(
    function: OwnerFunction,
    *,
    safe: str,
    owners: Sequence[str],
    threshold: int,
    owner: str | None = None,
    new_owner: str | None = None,
    new_threshold: int | None = None,
) -> OwnerChange:
    """The change asked for, checked against the Safe's `owners` (as `getOwners` lists them)
    and `threshold`; SafeError, saying why, for anything the Safe would refuse or that would
    leave it unusable.

    Addresses must be given checksummed (EIP-55), so a mistyped one is caught rather than
    made an owner. `new_threshold` defaults to the current threshold for an addition or a
    removal; a removal that would leave fewer owners than the threshold must lower it.
    """
    current: list[str] = [to_checksum_address(o) for o in owners]
    needs = {
        "addOwnerWithThreshold": {"owner"},
        "removeOwner": {"owner"},
        "swapOwner": {"owner", "new_owner"},
        "changeThreshold": {"new_threshold"},
    }.get(function)
    if needs is None:
        raise SafeError(f"{function!r} is not a change of the Safe's owners")
    given = {
        name
        for name, value in (
            ("owner", owner),
            ("new_owner", new_owner),
            ("new_threshold", new_threshold),
        )
        if value is not None
    }
    allowed = needs | (
        {"new_threshold"} if function in ("addOwnerWithThreshold", "removeOwner") else set()
    )
    if not needs <= given or not given <= allowed:
        optional = " (and optionally new_threshold)" if allowed != needs else ""
        raise SafeError(f"{function} takes {' and '.join(sorted(needs))}{optional}, no more")
    target = None if owner is None else _checksummed(owner, "owner")
    newcomer = None if new_owner is None else _checksummed(new_owner, "new owner")
    for address in (
        a for a in (newcomer, target if function == "addOwnerWithThreshold" else None) if a
    ):
        if address in current:
            raise SafeError(f"{address} is already an owner of the Safe")
        if address == to_checksum_address(safe):
            raise SafeError("the Safe cannot be an owner of itself")
    if function != "addOwnerWithThreshold" and target is not None and target not in current:
        raise SafeError(f"{target} is not an owner of the Safe (owners: {', '.join(current)})")
    after = len(current) + {"addOwnerWithThreshold": 1, "removeOwner": -1}.get(function, 0)
    if new_threshold is not None and (
        isinstance(new_threshold, bool)
        or not isinstance(new_threshold, int)
        or not 1 <= new_threshold <= after
    ):
        raise SafeError(
            f"threshold {new_threshold!r} is not between 1 and the {after} owners the Safe "
            "would have after the change"
        )
    return _change(function, current, threshold, target, newcomer, new_threshold)


def _change(
    function: OwnerFunction,
    current: list[str],
    threshold: int,
    target: str | None,
    newcomer: str | None,
    new_threshold: int | None,
) -> OwnerChange:
    keep = threshold if new_threshold is None else new_threshold
    if function == "addOwnerWithThreshold":
        if len(current) >= MAX_SAFE_OWNERS:
            raise SafeError(
                f"the Safe has {len(current)} owners already: at most {MAX_SAFE_OWNERS}"
            )
        return OwnerChange(function, owner=target, threshold=keep)
    if function == "changeThreshold":
        if new_threshold == threshold:
            raise SafeError(f"the threshold is {threshold} already: nothing would change")
        return OwnerChange(function, threshold=new_threshold)
    assert target is not None
    index = current.index(target)
    previous = SENTINEL_OWNERS if index == 0 else current[index - 1]
    if function == "swapOwner":
        return OwnerChange(function, owner=target, previous=previous, new_owner=newcomer)
    if len(current) == 1:
        raise SafeError("the Safe's only owner cannot be removed: add another first")
    if keep > len(current) - 1:
        raise SafeError(
            f"removing {target} would leave {len(current) - 1} owners under the threshold of "
            f"{threshold}: give a lower threshold with it"
        )
    return OwnerChange(function, owner=target, previous=previous, threshold=keep)


def _checksummed(value: str, name: str) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise SafeError(f"the {name} is not an address: {value!r}")
    if not is_checksum_address(value):
        raise SafeError(
            f"the {name} {value} is not checksummed (EIP-55): give it as `keys new` printed "
            "it, mixed case, so that a mistyped address is caught"
        )
    return value
