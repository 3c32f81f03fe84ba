"""The ledger's admin acts as call data: what a Safe transaction wraps, and what owners read.

Only CommitmentLedger's own admin functions are admin acts: binding an account to a
department with a role (`grantDepartmentRole`), granting and revoking a role (`grantRole`,
`revokeRole`). Owners sign call data they did not write, so decoding is strict: an unknown
selector, a role that is not the ledger's, or trailing bytes are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import is_address, to_checksum_address

from ledger.contract import REGISTRAR_ROLE, VERIFIER_ROLE
from ledger.errors import SafeError

AdminFunction = Literal["grantDepartmentRole", "grantRole", "revokeRole"]
RoleName = Literal["registrar", "verifier", "admin"]
ADMIN_ROLES: dict[RoleName, bytes] = {
    "registrar": REGISTRAR_ROLE,
    "verifier": VERIFIER_ROLE,
    "admin": bytes(32),  # DEFAULT_ADMIN_ROLE
}
_SIGNATURES: dict[AdminFunction, tuple[str, ...]] = {
    "grantDepartmentRole": ("bytes32", "address", "bytes32"),
    "grantRole": ("bytes32", "address"),
    "revokeRole": ("bytes32", "address"),
}
_SELECTORS = {
    function_signature_to_4byte_selector(f"{name}({','.join(types)})"): name
    for name, types in _SIGNATURES.items()
}


@dataclass(frozen=True)
class AdminCall:
    """One admin act on the ledger: `department` only for `grantDepartmentRole`."""

    function: AdminFunction
    role: RoleName
    account: str
    department: bytes | None = None

    def __post_init__(self) -> None:
        if self.function not in _SIGNATURES:
            raise SafeError(f"{self.function!r} is not an admin function of the ledger")
        if self.role not in ADMIN_ROLES:
            raise SafeError(f"role {self.role!r} is not one of {', '.join(ADMIN_ROLES)}")
        if not isinstance(self.account, str) or not is_address(self.account):
            raise SafeError(f"not an account address: {self.account!r}")
        object.__setattr__(self, "account", to_checksum_address(self.account))
        binding = self.function == "grantDepartmentRole"
        if binding != (self.department is not None):
            raise SafeError("a department goes with grantDepartmentRole, and only with it")
        if binding:
            if self.role == "admin":
                raise SafeError("an account is bound to a department as registrar or verifier")
            if not isinstance(self.department, bytes) or len(self.department) != 32:
                raise SafeError("a department id is 32 bytes")
            if self.department == bytes(32):
                raise SafeError("the department id must not be zero")

    def data(self) -> bytes:
        """The call data of this act on CommitmentLedger."""
        types = _SIGNATURES[self.function]
        args: list[object] = [ADMIN_ROLES[self.role], self.account]
        if self.department is not None:
            args.append(self.department)
        selector = function_signature_to_4byte_selector(f"{self.function}({','.join(types)})")
        return selector + abi_encode(list(types), args)


def decode_admin_call(data: bytes) -> AdminCall:
    """The admin act `data` encodes; SafeError for anything else (so nobody signs it)."""
    function = _SELECTORS.get(data[:4])
    if function is None:
        raise SafeError(
            f"call data 0x{data[:4].hex()}... is not an admin function of the ledger "
            f"({', '.join(_SIGNATURES)})"
        )
    types = _SIGNATURES[function]
    if len(data) != 4 + 32 * len(types):
        raise SafeError(f"call data of {function} must be {4 + 32 * len(types)} bytes")
    try:
        values = abi_decode(list(types), data[4:], strict=True)
    except Exception as exc:  # a malformed address word and the like
        raise SafeError(f"call data of {function} do not decode ({exc})") from exc
    role = next((name for name, value in ADMIN_ROLES.items() if value == values[0]), None)
    if role is None:
        raise SafeError(f"role 0x{bytes(values[0]).hex()} is not one of the ledger's roles")
    department = bytes(values[2]) if function == "grantDepartmentRole" else None
    call = AdminCall(function, role, str(values[1]), department)
    if call.data() != data:  # one encoding only: what owners read is exactly what runs
        raise SafeError(f"call data of {function} are not in canonical form")
    return call
