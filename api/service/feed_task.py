"""The registry following the chain and the credit feed, as background tasks of the service.

Two leases, two roles (issue 18):

- `reconcile`: index the chain's confirmed events into the store and reconcile the registry
  with them. Any instance with a deployment seeks it, keys or none.
- `feed`: build and sign the feed's records from the indexed events, and deliver them. Only
  an instance whose feed is enabled and which holds the report key of every department whose
  records may appear seeks it (`feed_ready`), so a keyless public instance, one with the
  feed off or one department's own instance never takes it and leaves the feed waiting.

The feed holder does not index: the indexer's cursor is one per store, and two indexers on
it at once (the `reconcile` holder's and the feed holder's) would race, so indexing and
reconciling happen only under `reconcile`, and the feed builds from what is indexed (it
waits, gaplessly, when the `reconcile` holder is behind or being taken over).
"""

from __future__ import annotations

import logging

from api.service.context import ServiceContext
from api.service.leased_tasks import FEED_LEASE, RECONCILE_LEASE, LeasedStep
from ledger import ChainError, EventIndexer
from verifier import default_catalog
from verifier.feed import FeedFollower, StepResult
from verifier.records import ChainReconciler

log = logging.getLogger("commitledger.service.feed")

TASK_NAME = "feed"
RECONCILE_TASK_NAME = "reconcile"
IDLE_INTERVAL_S = 0.2


class BackgroundFeed:
    """One builder step at a time over the events `reconcile` indexed; the chain part under
    the chain's read lock (on the embedded chain, which is not thread-safe, the lock
    anchoring and department actions take; on a node none: the follower only reads, and
    must not hold them up). It never indexes (see the module's docstring)."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context
        self._follower: FeedFollower | None = None

    def step(self) -> StepResult:
        """One round; raises while the chain does not answer (retried later)."""
        link = self.context.chain
        ledger = link.ledger()
        if ledger is None:
            raise ChainError(link.last_error or "the chain does not answer")
        if self._follower is None:
            intake = self.context.intake
            self._follower = FeedFollower(
                self.context.store,
                ledger,
                default_catalog(),
                None if intake is None else intake.vault,
                self.context.report_key,
                confirmations=self.context.settings.feed_confirmations,
            )
        follower = self._follower
        builder = follower.builder
        appended = 0
        with link.read_lock(ledger):
            while True:
                added = len(builder.build())
                appended += added
                if added < builder.limit:
                    break
            redacted = builder.redact()
        # Webhooks are other systems: a slow one must not hold the chain's lock.
        delivered = follower.deliver()
        return StepResult(0, appended, delivered, builder.blocked_on, redacted)


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


def feed_departments(context: ServiceContext) -> frozenset[str]:
    """The departments whose records this instance would have to sign to build the feed.

    One department's own instance (`serve --department D`) sees every department's events
    on the chain: all of the catalog's. An instance holding several departments' keys signs
    for the departments it holds any key of (those taking part in this deployment); one
    holding none would sign for none, and builds no feed.
    """
    keys = context.keys
    departments = frozenset(default_catalog().departments())
    if keys.only is not None:
        return departments
    kinds = ("registrar", "verifier", "report")
    return frozenset(d for d in departments if any(keys.has(d, k) for k in kinds))


def feed_ready(context: ServiceContext) -> bool:
    """Whether this instance may seek the `feed` lease: its feed enabled, the master key
    there, and the report key of every department in `feed_departments`. Otherwise it would
    hold the lease while the feed waits for a key it does not have."""
    if not context.settings.feed or context.intake is None:
        return False
    needed = feed_departments(context)
    return bool(needed) and all(context.keys.has(d, "report") for d in needed)


def register_feed(context: ServiceContext) -> bool:
    """With a deployment, add the registry's reconciliation (lease `reconcile`, any
    instance); and the feed (lease `feed`) when `feed_ready`. True when the feed is added."""
    if context.chain.deployment is None:
        return False
    if RECONCILE_TASK_NAME not in context.background.names():
        log.info("registry reconciled with the chain in the background")
        step = LeasedStep(
            context.leases, RECONCILE_LEASE, BackgroundReconcile(context).step, IDLE_INTERVAL_S
        )
        context.background.add(RECONCILE_TASK_NAME, step, step.poll_s)
    if not feed_ready(context):
        if context.settings.feed:
            log.warning(
                "feed not built here: this instance lacks the master key or the report key "
                "of a department among %s",
                ", ".join(sorted(feed_departments(context))) or "(none held)",
            )
        return False
    if TASK_NAME not in context.background.names():
        log.info("feed builder in the background")
        step = LeasedStep(context.leases, FEED_LEASE, BackgroundFeed(context).step, IDLE_INTERVAL_S)
        context.background.add(TASK_NAME, step, step.poll_s)
    return True
