"""What the service's routes work with: the store, verifier records, tokens, the chain."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from api.files import read_deployment
from api.keyfiles import load_master_key
from api.run_start import today as platform_today
from api.service.background import BackgroundTasks
from api.service.keys import DepartmentKeys, key_unlock
from api.service.ratelimit import RateLimiter
from api.service.settings import Settings
from api.service.tokens import TokenStore
from ledger import (
    MASTER_KEY_ENV,
    Chain,
    ChainError,
    Intake,
    InvalidDocumentError,
    LeaseKeeper,
    Leases,
    LedgerContract,
    SigningKey,
    Store,
    StoreLocks,
    Vault,
    instance_id,
)
from verifier import DEFAULT_OFFICE_HOURS, OfficeHours, configure_catalog_dir, default_catalog
from verifier.engine import DecisionDesk
from verifier.records import VerifierRecords

log = logging.getLogger("commitledger.service")


@dataclass(frozen=True)
class Deployment:
    """The deployed contract, as the deployment file names it."""

    chain_id: int
    contract: str
    rpc: str | None


def load_deployment(settings: Settings) -> Deployment | None:
    """The deployment file's facts, or None when there is no file (no chain configured)."""
    path = settings.resolved_deployment_file
    if not path.exists():
        return None
    record = read_deployment(path)
    try:
        return Deployment(int(record["chain_id"]), str(record["contract"]), str(record["rpc"]))
    except (TypeError, ValueError):
        raise InvalidDocumentError(f"{path}: chain_id must be an integer") from None


class ChainLink:
    """The contract on its chain, connected on first use; a dead node is asked again later."""

    def __init__(
        self,
        deployment: Deployment | None,
        rpc_url: str | None = None,
        *,
        chain: Chain | None = None,
        retry_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        write_lock: threading.RLock | None = None,
    ) -> None:
        self.deployment = deployment
        self.rpc_url = rpc_url or (deployment.rpc if deployment else None)
        self._chain = chain
        self._ledger: LedgerContract | None = None
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._next_try = 0.0
        self._lock = threading.Lock()
        # Held while transactions are signed and sent (nonces are per process) and, on the
        # embedded chain, which is not thread-safe, around every read too.
        self.write_lock = write_lock or threading.RLock()
        self.last_error: str | None = None if deployment else "no deployment file"
        # Set when other instances sign with the same accounts (a shared PostgreSQL store):
        # the chain client then holds it per account while it signs and sends.
        self.account_lock: Callable[[str], AbstractContextManager[object]] | None = None

    def ledger(self) -> LedgerContract | None:
        """The contract binding, or None when no deployment is known or the node is down."""
        if self.deployment is None:
            return None
        with self._lock:
            if self._ledger is not None:
                return self._ledger
            if self._clock() < self._next_try:
                return None
            try:
                chain = self._chain or Chain.connect(self._url())
                if chain.chain_id != self.deployment.chain_id:
                    raise ChainError(
                        f"the node is on chain {chain.chain_id}, the deployment on "
                        f"{self.deployment.chain_id}"
                    )
            except ChainError as exc:
                self.last_error = str(exc)
                self._next_try = self._clock() + self._retry_seconds
                log.warning("chain unreachable", extra={"reason": type(exc).__name__})
                return None
            if self.account_lock is not None and chain.kind != "embedded":
                chain.share_accounts(self.account_lock)
            self._ledger = LedgerContract(chain, self.deployment.contract)
            self.last_error = None
            return self._ledger

    @property
    def node_url(self) -> str | None:
        """The JSON-RPC URL the contract is read at: None without a deployment, or on a
        chain handed in without one (the embedded chain)."""
        if self.deployment is None:
            return None
        if self._chain is not None:
            return self._chain.url if self._chain.kind != "embedded" else None
        return self.rpc_url or None

    def _url(self) -> str:
        if not self.rpc_url:
            raise ChainError("no JSON-RPC URL: set COMMITLEDGER_CHAIN_RPC_URL")
        return self.rpc_url

    def department_lock(
        self, ledger: LedgerContract, locks: StoreLocks, department: str
    ) -> AbstractContextManager[object]:
        """What a department's actions and verification runs hold: on the embedded chain (not
        thread-safe) the write lock; on a node the department's lock across the instances of
        the store (its outcome outbox is flushed by one at a time), which holds up nobody
        else's anchoring or actions. LockTimeoutError when another holds it too long."""
        if ledger.chain.kind == "embedded":
            return self.write_lock
        return locks.hold(f"department:{department}")

    def read_lock(self, ledger: LedgerContract) -> AbstractContextManager[object]:
        """What a reader of `ledger` holds: the write lock on the embedded chain (not
        thread-safe), nothing on a node, where reads need not wait for transactions."""
        return self.write_lock if ledger.chain.kind == "embedded" else nullcontext()

    def read(self, action: Callable[[LedgerContract], Any]) -> Any | None:
        """`action(ledger)`, or None when the chain cannot answer now."""
        ledger = self.ledger()
        if ledger is None:
            return None
        try:
            with self.read_lock(ledger):
                return action(ledger)
        except Exception as exc:  # the node is another system: any failure means "not now"
            self.last_error = f"{type(exc).__name__}: the node did not answer"
            log.warning("chain read failed", extra={"reason": type(exc).__name__})
            return None


def _open_vault(settings: Settings) -> Vault | None:
    # A file is a master keystore, opened with the key passphrase; clear only for the demo.
    if settings.master_key_file is not None:
        return load_master_key(settings.master_key_file, key_unlock(settings))
    if settings.master_key is not None:
        return Vault.from_text(settings.master_key.get_secret_value())
    return None


@dataclass
class ServiceContext:
    """Everything the routes need, opened once per process."""

    settings: Settings
    store: Store
    records: VerifierRecords
    tokens: TokenStore
    chain: ChainLink
    intake: Intake | None
    limiter: RateLimiter
    keys: DepartmentKeys
    # The platform's (Beijing) day, which the chain's blocks and the feed are read in.
    today: Callable[[], date] = field(default=platform_today)
    background: BackgroundTasks = field(default_factory=BackgroundTasks)
    # Office periods on the official calendar's working days: when decisions are due.
    hours: OfficeHours = field(default_factory=lambda: OfficeHours.parse(DEFAULT_OFFICE_HOURS))
    _leases: LeaseKeeper | None = field(default=None, repr=False)
    _locks: StoreLocks | None = field(default=None, repr=False)

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        chain: Chain | None = None,
        vault: Vault | None = None,
        today: Callable[[], date] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> ServiceContext:
        """Open the store and read the deployment; `chain` replaces connecting to a node."""
        store = Store(settings.resolved_store_url)
        vault = vault or _open_vault(settings)
        if vault is None:
            log.warning("no master key: intake is closed", extra={"hint": MASTER_KEY_ENV})
        configure_catalog_dir(settings.catalog_dir)  # what every default_catalog() reads
        matters = default_catalog().intake_terms()
        context = cls(
            settings=settings,
            store=store,
            records=VerifierRecords(store),
            tokens=TokenStore(store),
            chain=ChainLink(
                load_deployment(settings),
                settings.chain_rpc_url,
                chain=chain,
                retry_seconds=settings.chain_retry_seconds,
                clock=clock,
            ),
            intake=None if vault is None else Intake(store, vault, matters),
            limiter=RateLimiter(
                settings.rate_limit_burst, settings.rate_limit_per_second, clock=clock
            ),
            keys=DepartmentKeys.from_settings(
                settings, {terms.department for terms in matters.values()}
            ),
            today=today or platform_today,
            hours=OfficeHours.parse(settings.office_hours),
        )
        if store.dialect == "postgresql":  # several instances may share the store and keys
            locks = context.locks
            context.chain.account_lock = lambda address: locks.hold(f"account:{address.lower()}")
        return context

    @property
    def leases(self) -> LeaseKeeper:
        """The leases this instance holds or asks for (its background roles), kept by a
        thread between the app's start and stop; its holder is `instance_id` (hostname:pid)."""
        if self._leases is None:
            self._leases = LeaseKeeper(
                Leases(self.store),
                self.settings.instance_id or instance_id(),
                ttl=self.settings.lease_ttl_seconds,
                poll=self.settings.lease_poll_seconds,
            )
        return self._leases

    @property
    def locks(self) -> StoreLocks:
        """Exclusive sections across the instances of the store (accounts, departments)."""
        if self._locks is None:
            self._locks = StoreLocks(self.store)
        return self._locks

    def decision_desk(self) -> DecisionDesk:
        """Where the departments' decisions on applications are recorded, due times counted
        in the office hours."""
        return DecisionDesk(self.store, default_catalog(), self.hours)

    def report_key(self, department: str) -> SigningKey | None:
        """The department's report-signing key (`<keys_dir>/<D>/report.pem`), or None."""
        return self.keys.report_key_if_present(department)

    def close(self) -> None:
        """Release the store's connections."""
        if self.intake is not None:
            self.intake.close()
        self.store.close()
