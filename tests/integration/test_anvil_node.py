"""AnvilNode: a real anvil process on a free loopback port, its state file, crashes."""

from __future__ import annotations

import errno
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from support.deployment import HRSS_ID

from ledger import (
    REGISTRAR_ROLE,
    AnvilNode,
    Chain,
    ChainError,
    LedgerContract,
    NodeUnreachableError,
    Status,
    department_id,
    keccak256,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("anvil_binary"),
]

HRSS = department_id("BJ-HRSS")


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            return False
        return True


def deploy_and_anchor(chain: Chain, commitment: bytes) -> tuple[LedgerContract, LocalAccount]:
    admin, registrar = Account.create(), Account.create()
    chain.fund(admin.address)
    chain.fund(registrar.address)
    ledger = LedgerContract.deploy(chain, admin)
    ledger.grant_department_role(admin, REGISTRAR_ROLE, registrar.address, HRSS)
    ledger.anchor(registrar, commitment)
    return ledger, registrar


def group_alive(pgid: int) -> bool:
    """Whether any process of the group anvil was started in (its own session) still exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll `condition` until it holds or the deadline passes; return its last value."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return condition()
        time.sleep(0.02)
    return True


def test_starts_on_a_free_loopback_port_and_stops() -> None:
    node = AnvilNode()
    assert not node.running
    assert node.url == f"http://127.0.0.1:{node.port}"
    assert not listening(node.port)
    node.start()
    try:
        process = node._process
        assert process is not None
        assert node.running
        assert listening(node.port)
        chain = Chain.connect(node.url, kind="anvil")
        assert chain.chain_id == 31337
        command = node.command()
        assert command[command.index("--host") + 1] == "127.0.0.1"
        assert command[command.index("--port") + 1] == str(node.port)
    finally:
        node.stop()
    assert not node.running
    assert process.poll() is not None  # the process we started is reaped
    assert wait_until(lambda: not group_alive(process.pid))
    assert not listening(node.port)
    assert bindable(node.port)
    with pytest.raises(NodeUnreachableError):
        Chain.connect(node.url)
    node.stop()  # stopping twice is harmless


def test_stop_returns_only_when_the_node_is_gone() -> None:
    node = AnvilNode().start()
    process = node._process
    assert process is not None
    try:
        node.stop()
        assert not group_alive(process.pid)
        assert not listening(node.port)
    finally:
        node.kill()
        if group_alive(process.pid):
            os.killpg(process.pid, signal.SIGKILL)


def test_context_manager_stops_on_error() -> None:
    node = AnvilNode()

    def fail_inside() -> None:
        with node:
            assert listening(node.port)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    assert not node.running
    assert wait_until(lambda: not listening(node.port))


def test_two_nodes_get_different_ports() -> None:
    with AnvilNode() as a, AnvilNode() as b:
        assert a.port != b.port
        assert Chain.connect(a.url).chain_id == Chain.connect(b.url).chain_id == 31337


def test_start_fails_when_port_is_taken() -> None:
    with AnvilNode() as first:
        second = AnvilNode(port=first.port)
        try:
            with pytest.raises(ChainError):
                second.start()
            assert not second.running
        finally:
            second.stop()
        assert first.running


def test_missing_binary_is_reported(tmp_path: Path) -> None:
    node = AnvilNode(binary=tmp_path / "no-anvil")
    with pytest.raises(ChainError, match="npm ci"):
        node.start()


def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "anvil-state.json"
    commitment = keccak256(b"survives restart")
    node = AnvilNode(state_file=state)
    node.start()
    try:
        chain = Chain.connect(node.url, kind="anvil")
        ledger, registrar = deploy_and_anchor(chain, commitment)
        height = chain.block_number()
    finally:
        node.stop()
    assert state.exists()
    assert state.stat().st_size > 0

    restarted = AnvilNode(state_file=state)  # another port: the state is in the file alone
    with restarted:
        chain = Chain.connect(restarted.url, kind="anvil")
        assert chain.block_number() >= height
        assert chain.code_at(ledger.address) != b""
        again = LedgerContract(chain, ledger.address)
        standing = again.status_of(HRSS_ID, commitment)
        assert standing.status is Status.ANCHORED
        assert standing.department == HRSS
        assert again.has_role(REGISTRAR_ROLE, registrar.address)
        # and the chain goes on from there: a fresh client picks the right nonce
        again.anchor(registrar, keccak256(b"after restart"))
        assert again.is_anchored(HRSS_ID, keccak256(b"after restart"))


def test_kill_then_start_without_state_loses_the_chain() -> None:
    node = AnvilNode()
    node.start()
    try:
        chain = Chain.connect(node.url, kind="anvil")
        ledger, _ = deploy_and_anchor(chain, keccak256(b"lost"))
        assert chain.code_at(ledger.address) != b""
        process = node._process
        assert process is not None
        node.kill()
        assert not node.running
        assert process.poll() is not None
        assert wait_until(lambda: not group_alive(process.pid))  # SIGKILL hit the whole group
        with pytest.raises(NodeUnreachableError):
            Chain.connect(node.url)

        node.start()  # same port, no state file: a new, empty chain
        chain = Chain.connect(node.url, kind="anvil")
        assert chain.code_at(ledger.address) == b""
        assert chain.block_number() == 0
    finally:
        node.stop()
