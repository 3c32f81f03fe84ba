"""A department as the verifier acts for it: its code, its accounts on chain, its report key."""

from __future__ import annotations

from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount

from ledger import DepartmentId, SigningKey, department_id


@dataclass(frozen=True)
class Department:
    """One department's code and what it signs with: the verifier account that records
    outcomes, the key that signs its reports, and the registrar account that withdraws
    (None where the department's registrar key is kept elsewhere)."""

    code: str
    verifier: LocalAccount = field(repr=False)
    report_key: SigningKey = field(repr=False)
    registrar: LocalAccount | None = field(default=None, repr=False)

    @property
    def id(self) -> DepartmentId:
        """The department's id on chain (bytes32), to which the contract binds its accounts."""
        return department_id(self.code)
