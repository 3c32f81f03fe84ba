"""A deployed ledger for tests: an admin and, for two departments, a registrar and a verifier."""

from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger import REGISTRAR_ROLE, VERIFIER_ROLE, Chain, LedgerContract, department_id

HRSS = "BJ-HRSS"  # Beijing human-resources and social-security bureau
MARKET = "BJ-SAMR"  # Beijing market regulation administration


@dataclass
class Deployment:
    """A deployed ledger with an admin and, per department, a registrar and a verifier."""

    chain: Chain
    ledger: LedgerContract
    admin: LocalAccount
    registrar: LocalAccount
    verifier: LocalAccount
    other_registrar: LocalAccount
    other_verifier: LocalAccount
    outsider: LocalAccount


def deploy(chain: Chain) -> Deployment:
    """Deploy a ledger on `chain` and set up two departments' accounts."""
    accounts = [Account.create() for _ in range(6)]
    for account in accounts:
        chain.fund(account.address)
    admin, registrar, verifier, other_registrar, other_verifier, outsider = accounts
    ledger = LedgerContract.deploy(chain, admin)
    ledger.grant_department_role(admin, REGISTRAR_ROLE, registrar.address, department_id(HRSS))
    ledger.grant_department_role(admin, VERIFIER_ROLE, verifier.address, department_id(HRSS))
    ledger.grant_department_role(
        admin, REGISTRAR_ROLE, other_registrar.address, department_id(MARKET)
    )
    ledger.grant_department_role(
        admin, VERIFIER_ROLE, other_verifier.address, department_id(MARKET)
    )
    return Deployment(
        chain, ledger, admin, registrar, verifier, other_registrar, other_verifier, outsider
    )


HRSS_ID = department_id(HRSS)  # on chain, records and batches are keyed by department
MARKET_ID = department_id(MARKET)
