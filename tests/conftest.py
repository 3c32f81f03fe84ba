"""Shared fixtures: embedded and anvil chains, funded department accounts, a deployed ledger;
and the markers `node`, `db`, `browser`, put on each test by what it needs (see below)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from support.deployment import Deployment, deploy
from support.markers import needs
from support.service_keys import TEST_PASSPHRASE, TEST_SCRYPT_N

from ledger import ANVIL_BINARY, AnvilNode, Chain

pytest_plugins = ["support.postgres"]  # a PostgreSQL cluster, the `store` fixtures

# Clear key files are refused outside `serve --demo`: the fixtures write keys encrypted with
# the suite's passphrase (tests/support/service_keys.py), which every instance, command and
# process the tests start reads from here; the keystores the commands make get a cheap
# scrypt cost. tests/unit/test_keystores.py takes both away to check the refusals.
os.environ.setdefault("COMMITLEDGER_KEY_PASSPHRASE", TEST_PASSPHRASE)
os.environ.setdefault("COMMITLEDGER_KEY_SCRYPT_N", str(TEST_SCRYPT_N))

# ---------------------------------------------------------------------- workers


def pytest_configure(config: pytest.Config) -> None:
    """`make test` runs two pytest-xdist workers, whose environment says COLUMNS=80 and
    LINES=24 (execnet's): the command line's output would be cut as on an 80-column
    terminal, unlike a plain run, where stdout is a pipe of no width."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        for name in ("COLUMNS", "LINES"):
            os.environ.pop(name, None)


# ---------------------------------------------------------------------- markers


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by what it needs, so `-m "not node and not db and not browser"` is quick."""
    for item in items:
        for mark in sorted(needs(item)):
            item.add_marker(mark)


# ---------------------------------------------------------------------- chains


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


@pytest.fixture
def restore_signals() -> Iterator[None]:
    """`pipeline run` installs SIGINT and SIGTERM handlers: put pytest's back afterwards."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
