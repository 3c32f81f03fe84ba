"""The chain `commitledger serve` runs on: a managed anvil, the embedded chain, or a URL.

A managed anvil keeps its state in the data directory (`--state`), so a restart loses
nothing; it is restarted if it dies and stopped with the service. On a managed or embedded
chain without a deployment yet, the contract is deployed with an admin key kept in the keys
directory (created 0600), and every department whose keys are present gets its roles.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from api.files import read_deployment
from api.service import AccountRole, DepartmentKeys, Settings
from ledger import (
    REGISTRAR_ROLE,
    VERIFIER_ROLE,
    AnvilNode,
    Chain,
    ChainError,
    LedgerContract,
    department_id,
)

log = logging.getLogger("commitledger.serve")

STATE_FILE = "anvil-state.json"
ANVIL_LOG = "anvil.log"
STATE_INTERVAL_S = 5  # a backstop: the node also saves on SIGTERM (sent if we die)
SUPERVISE_INTERVAL_S = 1.0


class AnvilSupervisor:
    """A managed anvil on one loopback port, restarted with its state when it dies."""

    def __init__(self, data_dir: Path) -> None:
        self.node = AnvilNode(
            state_file=data_dir / STATE_FILE,
            state_interval=STATE_INTERVAL_S,
            log_file=data_dir / ANVIL_LOG,
            die_with_parent=True,
        )
        self.restarts = 0

    @property
    def url(self) -> str:
        """The node's JSON-RPC address (the same across restarts)."""
        return self.node.url

    def start(self) -> None:
        """Start the node; return once it answers."""
        self.node.start()

    def check(self) -> bool:
        """Restart the node if it died (a background step: True when it had to)."""
        if self.node.running:
            return False
        log.warning("the managed anvil died: restarting it", extra={"url": self.url})
        self.node.start()
        self.restarts += 1
        return True

    def stop(self) -> None:
        """Stop the node; it saves its state."""
        self.node.stop()


@dataclass(frozen=True)
class ServedChain:
    """What the service connects to."""

    kind: str  # anvil | embedded | rpc
    rpc_url: str
    deployment_file: Path
    chain: Chain | None  # the embedded chain object (it has no URL)
    supervisor: AnvilSupervisor | None
    deployed_now: bool


_ROLES: tuple[tuple[AccountRole, bytes], ...] = (
    ("registrar", REGISTRAR_ROLE),
    ("verifier", VERIFIER_ROLE),
)


def grant_department_roles(chain: Chain, ledger: LedgerContract, keys: DepartmentKeys) -> list[str]:
    """Give each department whose keys are present its registrar and verifier roles (with the
    admin key from the keys directory; nothing without one)."""
    admin = keys.admin_account(create=False)
    if admin is None:
        return []
    granted = []
    for department in sorted(keys.departments):
        for role, role_id in _ROLES:
            if not keys.has(department, role):
                continue
            account = keys.account(department, role)
            if ledger.has_role(role_id, account.address):
                continue
            chain.fund(account.address)
            ledger.grant_department_role(admin, role_id, account.address, department_id(department))
            granted.append(f"{department} {role}")
    return granted


def _deploy(chain: Chain, keys: DepartmentKeys, path: Path, rpc_url: str) -> LedgerContract:
    admin = keys.admin_account(create=True)
    assert admin is not None
    chain.fund(admin.address)
    ledger = LedgerContract.deploy(chain, admin)
    record = {"rpc": rpc_url, "chain_id": chain.chain_id, "contract": ledger.address}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return ledger


def _existing(chain: Chain, path: Path) -> LedgerContract:
    record = read_deployment(path)
    if int(record["chain_id"]) != chain.chain_id or not chain.code_at(str(record["contract"])):
        raise ChainError(
            f"{path} names contract {record['contract']} on chain {record['chain_id']}, which "
            f"this node does not hold (its state file was lost?): move {path} away to deploy "
            "afresh, knowing that the store's anchors are then on a chain that is gone"
        )
    return LedgerContract(chain, str(record["contract"]))


def bootstrap_deployment(chain: Chain, settings: Settings, path: Path, rpc_url: str) -> bool:
    """Deploy when `path` does not exist; grant roles to departments with keys. True when
    it deployed now."""
    from verifier import default_catalog

    keys = DepartmentKeys.from_settings(settings, default_catalog().departments())
    deployed_now = not path.exists()
    ledger = _deploy(chain, keys, path, rpc_url) if deployed_now else _existing(chain, path)
    granted = grant_department_roles(chain, ledger, keys)
    if granted:
        log.info("roles granted", extra={"granted": granted})
    return deployed_now


@contextmanager
def served_chain(settings: Settings) -> Iterator[ServedChain]:
    """Start (or connect to) the chain `settings.chain` names; stop what was started."""
    if settings.chain == "anvil":
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        supervisor = AnvilSupervisor(settings.data_dir)
        supervisor.start()
        try:
            path = settings.resolved_deployment_file
            chain = Chain.connect(supervisor.url, kind="anvil")
            deployed = bootstrap_deployment(chain, settings, path, supervisor.url)
            yield ServedChain("anvil", supervisor.url, path, None, supervisor, deployed)
        finally:
            supervisor.stop()
        return
    if settings.chain == "embedded":
        chain = Chain.embedded()
        # The embedded chain dies with the process: its deployment is not kept either.
        with tempfile.TemporaryDirectory(prefix="commitledger-embedded-") as folder:
            path = Path(folder) / "deployment.json"
            bootstrap_deployment(chain, settings, path, "embedded")
            yield ServedChain("embedded", "embedded", path, chain, None, True)
        return
    path = settings.resolved_deployment_file
    yield ServedChain("rpc", settings.chain, path, None, None, False)
