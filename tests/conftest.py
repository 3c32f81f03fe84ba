"""Shared fixtures: embedded and anvil chains, funded department accounts, a deployed ledger."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.anvil import ANVIL_BINARY, AnvilNode
from ledger.chain import Chain
from ledger.contract import REGISTRAR_ROLE, VERIFIER_ROLE, LedgerContract, department_id

pytest_plugins = ["postgres"]  # tests/postgres.py: a PostgreSQL cluster, `store` fixtures

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


@pytest.fixture
def embedded_chain() -> Chain:
    """A fresh in-process eth-tester chain."""
    return Chain.embedded()


@pytest.fixture
def anvil_binary() -> None:
    """Fails (never skips) when anvil is missing: make test installs it with node_modules."""
    if not ANVIL_BINARY.exists():
        pytest.fail("anvil is missing: run `npm ci` (make test does)")


@pytest.fixture
def anvil(anvil_binary: None) -> Iterator[AnvilNode]:
    """A real anvil node on a free loopback port, stopped after the test."""
    with AnvilNode() as node:
        yield node


@pytest.fixture
def anvil_chain(anvil: AnvilNode) -> Chain:
    """A chain client connected to the test's anvil node."""
    return Chain.connect(anvil.url, kind="anvil")


@pytest.fixture(params=["embedded", "anvil"])
def any_chain(request: pytest.FixtureRequest) -> Iterator[Chain]:
    """Each test runs on the embedded chain and on a real anvil node."""
    if request.param == "embedded":
        yield Chain.embedded()
        return
    with AnvilNode() as node:
        yield Chain.connect(node.url, kind="anvil")


@pytest.fixture
def deployment(any_chain: Chain) -> Deployment:
    """A ledger deployed on each kind of chain."""
    return deploy(any_chain)


@pytest.fixture
def embedded_deployment(embedded_chain: Chain) -> Deployment:
    """A ledger deployed on the embedded chain only."""
    return deploy(embedded_chain)
