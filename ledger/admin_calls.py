"""The ledger's admin acts as call data: what a Safe transaction wraps, and what owners read.

Only CommitmentLedger's own admin functions are admin acts: binding an account to a
department with a role (`grantDepartmentRole`), granting and revoking a role (`grantRole`,
`revokeRole`), and correcting a department's breach (`correctBreach`). Owners sign call
data they did not write, so decoding is strict: an unknown selector, a role that is not the
ledger's, or trailing bytes are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import is_address, to_checksum_address

from ledger.contract import REGISTRAR_ROLE, VERIFIER_ROLE
from ledger.errors import SafeError

AdminFunction = Literal["grantDepartmentRole", "grantRole", "revokeRole", "correctBreach"]
RoleName = Literal["registrar", "verifier", "admin"]
ADMIN_ROLES: dict[RoleName, bytes] = {
    "registrar": REGISTRAR_ROLE,
    "verifier": VERIFIER_ROLE,
    "admin": bytes(32),  # DEFAULT_ADMIN_ROLE
}
# Each admin function's parameters, in order: (AdminCall field, ABI type).
_PARAMETERS: dict[AdminFunction, tuple[tuple[str, str], ...]] = {
    "grantDepartmentRole": (("role", "bytes32"), ("account", "address"), ("department", "bytes32")),
    "grantRole": (("role", "bytes32"), ("account", "address")),
    "revokeRole": (("role", "bytes32"), ("account", "address")),
    "correctBreach": (
        ("department", "bytes32"),
        ("commitment", "bytes32"),
        ("evidence", "bytes32"),
    ),
}
_SELECTORS = {
    function_signature_to_4byte_selector(f"{name}({','.join(t for _, t in params)})"): name
    for name, params in _PARAMETERS.items()
}
_HASHES = ("department", "commitment", "evidence")


@dataclass(frozen=True)
class AdminCall:
    """One admin act on the ledger; the fields its function takes are set, the others None."""

    function: AdminFunction
    role: RoleName | None = None
    account: str | None = None
    department: bytes | None = None
    commitment: bytes | None = None
    evidence: bytes | None = None

    def __post_init__(self) -> None:
        if self.function not in _PARAMETERS:
            raise SafeError(f"{self.function!r} is not an admin function of the ledger")
        taken = {name for name, _ in _PARAMETERS[self.function]}
        for name in ("role", "account", *_HASHES):
            if (getattr(self, name) is not None) != (name in taken):
                raise SafeError(
                    f"{self.function} takes {', '.join(sorted(taken))}: {name} is "
                    + ("missing" if name in taken else "not one of them")
                )
        if self.role is not None and self.role not in ADMIN_ROLES:
            raise SafeError(f"role {self.role!r} is not one of {', '.join(ADMIN_ROLES)}")
        if self.account is not None:
            if not isinstance(self.account, str) or not is_address(self.account):
                raise SafeError(f"not an account address: {self.account!r}")
            object.__setattr__(self, "account", to_checksum_address(self.account))
        for name in _HASHES:
            value = getattr(self, name)
            if value is not None and (not isinstance(value, bytes) or len(value) != 32):
                raise SafeError(f"{name} is 32 bytes")
            if value == bytes(32):
                raise SafeError(f"{name} must not be zero")
        if self.function == "grantDepartmentRole" and self.role == "admin":
            raise SafeError("an account is bound to a department as registrar or verifier")

    def data(self) -> bytes:
        """The call data of this act on CommitmentLedger."""
        params = _PARAMETERS[self.function]
        types = [t for _, t in params]
        args = [
            ADMIN_ROLES[self.role] if name == "role" and self.role else getattr(self, name)
            for name, _ in params
        ]
        selector = function_signature_to_4byte_selector(f"{self.function}({','.join(types)})")
        return selector + abi_encode(types, args)


_F = TypeVar("_F", bound=str)


def decode_selected(
    data: bytes,
    selectors: Mapping[bytes, _F],
    parameters: Mapping[_F, tuple[tuple[str, str], ...]],
    what: str,
) -> tuple[_F, tuple[Any, ...]]:
    """The function of `selectors` whose call `data` are, and its decoded arguments (strict
    ABI, static words only); SafeError naming `what` the data are not, so nobody signs it."""
    function = selectors.get(data[:4])
    if function is None:
        raise SafeError(f"call data 0x{data[:4].hex()}... are not {what} ({', '.join(parameters)})")
    params = parameters[function]
    if len(data) != 4 + 32 * len(params):
        raise SafeError(f"call data of {function} must be {4 + 32 * len(params)} bytes")
    try:
        values = abi_decode([t for _, t in params], data[4:], strict=True)
    except Exception as exc:  # a malformed address word and the like
        raise SafeError(f"call data of {function} do not decode ({exc})") from exc
    return function, tuple(values)


def decode_admin_call(data: bytes) -> AdminCall:
    """The admin act `data` encodes; SafeError for anything else (so nobody signs it)."""
    function, values = decode_selected(
        data, _SELECTORS, _PARAMETERS, "an admin function of the ledger"
    )
    params = _PARAMETERS[function]
    fields: dict[str, Any] = {}
    for (name, _), value in zip(params, values, strict=True):
        if name == "role":
            role = next((r for r, v in ADMIN_ROLES.items() if v == value), None)
            if role is None:
                raise SafeError(f"role 0x{bytes(value).hex()} is not one of the ledger's roles")
            fields[name] = role
        else:
            fields[name] = str(value) if name == "account" else bytes(value)
    call = AdminCall(function, **fields)
    if call.data() != data:  # one encoding only: what owners read is exactly what runs
        raise SafeError(f"call data of {function} are not in canonical form")
    return call
