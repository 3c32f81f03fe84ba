"""The credit feed's follower as a background task of the service: index, build, deliver.

Under the lease `feed` (or, without a feed, the registry's reconciliation under the same
lease: both follow the chain into the store): one instance of those sharing a store follows
the chain at a time, another takes over when it dies.
"""

from __future__ import annotations

import logging

from api.service.context import ServiceContext
from api.service.leased_tasks import FEED_LEASE, LeasedStep
from ledger import ChainError, EventIndexer
from verifier import default_catalog
from verifier.feed import FeedFollower, StepResult
from verifier.records import ChainReconciler

log = logging.getLogger("commitledger.service.feed")

TASK_NAME = "feed"
RECONCILE_TASK_NAME = "reconcile"
IDLE_INTERVAL_S = 0.2


class BackgroundFeed:
    """One follower step at a time; the chain part under the chain's read lock (on the
    embedded chain, which is not thread-safe, the lock anchoring and department actions
    take; on a node none: the follower only reads, and must not hold them up)."""

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
        with link.read_lock(ledger):
            indexed, appended, redacted = follower.advance()
        # Webhooks are other systems: a slow one must not hold the chain's lock.
        delivered = follower.deliver()
        return StepResult(indexed, appended, delivered, follower.builder.blocked_on, redacted)


class BackgroundReconcile:
    """Without the feed, the registry still follows the chain: index the confirmed events
    and reconcile the store with them (what the feed follower does before building)."""

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


def register_feed(context: ServiceContext) -> bool:
    """Add the feed task when enabled, with the master key and some department's report key.

    Otherwise, with a deployment, a task that only reconciles the registry with the chain's
    confirmed events: the breach list and the views follow the chain with or without a feed.
    """
    if context.chain.deployment is None:
        return False
    settings = context.settings
    departments = set(default_catalog().departments())
    with_feed = (
        settings.feed
        and context.intake is not None
        and any(context.keys.has(d, "report") for d in departments)
    )
    if not with_feed:
        if RECONCILE_TASK_NAME not in context.background.names():
            log.info("registry reconciled with the chain in the background (no feed)")
            step = LeasedStep(
                context.leases, FEED_LEASE, BackgroundReconcile(context).step, IDLE_INTERVAL_S
            )
            context.background.add(RECONCILE_TASK_NAME, step, step.poll_s)
        return False
    if TASK_NAME not in context.background.names():
        log.info("feed follower in the background")
        step = LeasedStep(context.leases, FEED_LEASE, BackgroundFeed(context).step, IDLE_INTERVAL_S)
        context.background.add(TASK_NAME, step, step.poll_s)
    return True
