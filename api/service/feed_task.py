"""The credit feed's follower as a background task of the service: index, build, deliver."""

from __future__ import annotations

import logging

from api.service.context import ServiceContext
from ledger import ChainError
from verifier import default_catalog
from verifier.feed import FeedFollower, StepResult

log = logging.getLogger("commitledger.service.feed")

TASK_NAME = "feed"
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


def register_feed(context: ServiceContext) -> bool:
    """Add the feed task when enabled, with the master key and some department's report key."""
    settings = context.settings
    if not settings.feed or context.chain.deployment is None or context.intake is None:
        return False
    departments = set(default_catalog().departments())
    if not any(context.keys.has(d, "report") for d in departments):
        return False
    if TASK_NAME not in context.background.names():
        log.info("feed follower in the background")
        context.background.add(TASK_NAME, BackgroundFeed(context).step, IDLE_INTERVAL_S)
    return True
