"""The registry following the chain and the credit feed, as background tasks of the service.

Three kinds of lease, three roles (issue 18):

- `reconcile`: index the chain's confirmed events into the store and reconcile the registry
  with them. Any instance with a deployment seeks it, keys or none.
- `feed`: the sequencer. It gives each confirmed, indexed event its place in the feed, in
  chain order (withholding what must not be published), signs at once the records of the
  departments whose report key it holds, and leaves the others' places waiting for their
  signers. Any instance with the feed on seeks it, a keyless public one too. It needs no
  master key: the order and the withholding come from the chain and the store's clear
  columns. Without the master key it signs nothing itself (the records' details come from
  the sealed documents) and delivers no webhooks (their secrets are sealed under it).
- `feed-sign:<D>`: D's signer. An instance holding D's report key and the master key
  rebuilds D's waiting records from the indexed events and the store (never from anything
  the sequencer wrote), signs them with D's key, and so moves the published head; it
  redacts D's records of erased commitments, and delivers webhooks. Taking the lease, it
  publishes D's public report key in the store (`verifier.feed.keys`), which any instance
  serves at /v1/feed/keys. A department's own
  instance (`serve --department D`) seeks only D's. One task (`feed-sign`) acts under each
  of these leases held here, as anchoring does: an instance holding every department's key
  does not run a thread per department.

The published head stops at the first place still awaiting its signer: with D's instances
all down the feed waits there, gaplessly, and goes on when one is back.

The feed's tasks do not index: the indexer's cursor is one per store, and two indexers on it
at once would race, so indexing and reconciling happen only under `reconcile`, and the feed
builds from what is indexed (it waits, gaplessly, when the `reconcile` holder is behind or
being taken over).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import ExitStack

from api.keyfiles import KeyFileError
from api.service.context import ServiceContext
from api.service.leased_tasks import FEED_LEASE, RECONCILE_LEASE, LeasedStep, feed_sign_lease
from ledger import ChainError, EventIndexer, LedgerContract, SigningKey
from verifier import default_catalog
from verifier.feed import FeedFollower, FeedRecord, StepResult, publish_own_key
from verifier.records import ChainReconciler

log = logging.getLogger("commitledger.service.feed")

ReportKeys = Callable[[str], SigningKey | None]

TASK_NAME = "feed"
SIGN_TASK_NAME = "feed-sign"
RECONCILE_TASK_NAME = "reconcile"
IDLE_INTERVAL_S = 0.2


def _no_keys(_department: str) -> SigningKey | None:
    return None


class _UsableKeys:
    """The report keys the sequencer signs with at once: one that does not open (a wrong
    passphrase, a clear file where clear ones are refused) is left to its department's
    signer, so that it stops that department's records only, not the whole feed."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context
        self._failed: set[str] = set()

    def __call__(self, department: str) -> SigningKey | None:
        try:
            return self.context.report_key(department)
        except KeyFileError as exc:
            if department not in self._failed:
                self._failed.add(department)
                log.warning("report key of %s left to its signer: %s", department, exc)
            return None


class _FeedTask:
    """The follower a feed task builds with, made once the chain answers."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context
        self._follower: FeedFollower | None = None

    def _ledger(self) -> LedgerContract:
        ledger = self.context.chain.ledger()
        if ledger is None:
            raise ChainError(self.context.chain.last_error or "the chain does not answer")
        return ledger

    def _follower_for(self, ledger: LedgerContract, report_keys: ReportKeys) -> FeedFollower:
        if self._follower is None:
            intake = self.context.intake
            self._follower = FeedFollower(
                self.context.store,
                ledger,
                default_catalog(),
                None if intake is None else intake.vault,
                report_keys,
                confirmations=self.context.settings.feed_confirmations,
            )
        return self._follower


class BackgroundFeed(_FeedTask):
    """The sequencer's step over the events `reconcile` indexed; the chain part under the
    chain's read lock (on the embedded chain, which is not thread-safe, the lock anchoring
    and department actions take; on a node none: the feed only reads, and must not hold
    them up). It never indexes (see the module's docstring)."""

    def step(self) -> StepResult:
        """One round; raises while the chain does not answer (retried later)."""
        ledger = self._ledger()
        with_vault = self.context.intake is not None
        # Without the master key a record's details could not be read: sign nothing here.
        follower = self._follower_for(ledger, _UsableKeys(self.context) if with_vault else _no_keys)
        builder = follower.builder
        fence = self.context.leases.fence(FEED_LEASE)  # None: called outside the lease
        appended = 0
        with self.context.chain.read_lock(ledger):
            while True:
                entries = builder.build(fence=fence)
                appended += sum(isinstance(entry, FeedRecord) for entry in entries)
                if len(entries) < builder.limit:
                    break
        # Webhooks are other systems: a slow one must not hold the chain's lock.
        delivered = follower.deliver() if with_vault else 0
        return StepResult(0, appended, delivered, builder.blocked_on, 0)


class BackgroundSigners(_FeedTask):
    """The signers of the departments whose report keys this instance holds, one task for
    all (as anchoring is): under each department's `feed-sign:<D>` lease held here, its
    waiting records rebuilt and signed with its key only, the head moved, its erased
    commitments' records redacted; and the webhooks delivered."""

    def __init__(self, context: ServiceContext, departments: Iterable[str]) -> None:
        super().__init__(context)
        self.departments = frozenset(departments)
        self._acting: frozenset[str] = frozenset()
        self._published: dict[str, int] = {}  # department -> the lease token it was under
        for department in sorted(self.departments):
            context.leases.want(feed_sign_lease(department))

    def report_key(self, department: str) -> SigningKey | None:
        """The report key of a department whose lease is held in this step; never another's."""
        return self.context.report_key(department) if department in self._acting else None

    def step(self) -> StepResult | bool:
        """One round over the departments whose leases are held here (False: none is);
        raises while the chain does not answer (retried later). A hand-over of a lease to
        another instance (the fair share) waits until the step is done."""
        keeper = self.context.leases
        with ExitStack() as acting:
            held = [
                department
                for department in sorted(self.departments)
                if acting.enter_context(keeper.acting(feed_sign_lease(department))) is not None
            ]
            if not held:
                return False
            self._acting = frozenset(held)
            try:
                return self._step(held)
            finally:
                self._acting = frozenset()

    def _publish(self, held: list[str]) -> None:
        """Publish the public key of each department whose lease was taken since the last
        step (its private half held here), under the lease's fence: any instance serves it
        at /v1/feed/keys before a record is signed with it."""
        keeper = self.context.leases
        for department in held:
            lease = feed_sign_lease(department)
            token = keeper.token(lease)
            key = self.report_key(department)
            if token is None or key is None or self._published.get(department) == token:
                continue
            if publish_own_key(self.context.store.engine, department, key, keeper.fence(lease)):
                log.info("feed key published", extra={"department": department})
            self._published[department] = token

    def _step(self, held: list[str]) -> StepResult:
        ledger = self._ledger()
        follower = self._follower_for(ledger, self.report_key)  # the feed's tables there
        self._publish(held)
        builder, keeper = follower.builder, self.context.leases
        waiting = set(follower.feed.waiting_departments())
        signed = 0
        with self.context.chain.read_lock(ledger):
            for department in held:
                if department in waiting:
                    fence = keeper.fence(feed_sign_lease(department))
                    signed += len(builder.sign(department, fence=fence))
            redacted = builder.redact(held)
        delivered = follower.deliver()
        return StepResult(0, signed, delivered, builder.blocked_on, redacted)


class BackgroundReconcile:
    """The registry follows the chain: index the confirmed events and reconcile the store
    with them (the feed, wherever it is built, builds from what this indexed)."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context
        self._indexer: EventIndexer | None = None

    def step(self) -> int:
        """One indexing round and its reconciliation; raises while the chain does not answer."""
        link = self.context.chain
        ledger = link.ledger()
        if ledger is None:
            raise ChainError(link.last_error or "the chain does not answer")
        if self._indexer is None:
            intake = self.context.intake
            store = self.context.store
            reconciler = ChainReconciler(
                store, ledger, default_catalog(), None if intake is None else intake.vault
            )
            self._indexer = EventIndexer(
                store, ledger, self.context.settings.feed_confirmations, reconciler.reconcile
            )
        with link.read_lock(ledger):
            return self._indexer.sync()


def feed_ready(context: ServiceContext) -> bool:
    """Whether this instance may seek the `feed` lease (sequence the feed): its feed is on.
    No key is needed: what it cannot sign waits for the department's signer."""
    return context.settings.feed


def signing_departments(context: ServiceContext) -> frozenset[str]:
    """The departments whose records this instance signs (one `feed-sign:<D>` each): those
    whose report key it holds, when the master key is there too (a record's details come
    from the sealed documents); none with the feed off."""
    if not context.settings.feed or context.intake is None:
        return frozenset()
    keys = context.keys
    return frozenset(d for d in keys.held if keys.has(d, "report"))


def register_feed(context: ServiceContext) -> bool:
    """With a deployment, add the registry's reconciliation (lease `reconcile`, any
    instance); with the feed on, the sequencer (lease `feed`) and a signer per department
    in `signing_departments` (lease `feed-sign:<D>`). True when the feed is added."""
    if context.chain.deployment is None:
        return False
    background = context.background
    if RECONCILE_TASK_NAME not in background.names():
        log.info("registry reconciled with the chain in the background")
        step = LeasedStep(
            context.leases, RECONCILE_LEASE, BackgroundReconcile(context).step, IDLE_INTERVAL_S
        )
        background.add(RECONCILE_TASK_NAME, step, step.poll_s)
    if not feed_ready(context):
        return False
    if TASK_NAME not in background.names():
        log.info("feed sequenced in the background")
        step = LeasedStep(context.leases, FEED_LEASE, BackgroundFeed(context).step, IDLE_INTERVAL_S)
        background.add(TASK_NAME, step, step.poll_s)
    signers = signing_departments(context)
    if not signers:
        log.warning("no feed records signed here: no report key, or no master key")
    elif SIGN_TASK_NAME not in background.names():
        log.info("feed records signed in the background", extra={"departments": sorted(signers)})
        task = BackgroundSigners(context, signers)
        background.add(SIGN_TASK_NAME, task.step, min(context.leases.poll, IDLE_INTERVAL_S))
    return True
