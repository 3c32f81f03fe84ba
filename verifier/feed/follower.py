"""Keeps the feed up to date: index confirmed events, sequence and sign their records, push
to webhooks (the single-instance loop of `commitledger feed run`; the service splits it into
leased tasks, `api.service.feed_task`).

`FeedFollower.step()` does one bounded round and is truthy when it did something, so a
command (`commitledger feed run`) or the service's background tasks can repeat it.

Reorgs: records wait for `confirmations` blocks, so a served record's event should never
vanish. If a deeper reorg removes one anyway, the record stays served (the feed is
append-only: a consumer must never see history rewritten silently); `feed check` then
reports it as `not_on_chain` for an operator, and events of the replacing blocks are
appended with new sequence numbers (the builder looks back `REORG_WINDOW` blocks). A place
sequenced for a department's signer whose event such a reorg removes from the index cannot
be rebuilt: its signer refuses it (logged), and the head waits there, `feed status` naming
the department, until an operator steps in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from ledger import EventIndexer, LedgerContract, Store, Vault
from verifier.catalog import Catalog
from verifier.feed.builder import FeedBuilder
from verifier.feed.records import FeedRecord, ReportKeys
from verifier.feed.store import FeedStore, Fence
from verifier.feed.subscribers import Subscriptions
from verifier.feed.webhooks import DeliveryPolicy, WebhookDeliverer
from verifier.records import ChainReconciler


@dataclass(frozen=True)
class StepResult:
    """What one step did."""

    indexed: int
    appended: int
    delivered: int
    blocked_on: str | None
    redacted: int = 0

    def __bool__(self) -> bool:
        return bool(self.indexed or self.appended or self.delivered or self.redacted)


class FeedFollower:
    """Index -> build -> deliver, over one store and one deployed contract."""

    def __init__(
        self,
        store: Store,
        ledger: LedgerContract,
        catalog: Catalog,
        vault: Vault | None,
        report_keys: ReportKeys,
        *,
        confirmations: int = 0,
        policy: DeliveryPolicy | None = None,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        sequencer_fence: Fence | None = None,
        signer_fence: Callable[[str], Fence | None] | None = None,
    ) -> None:
        """`sequencer_fence` and `signer_fence(department)`: the lease checks (`feed`,
        `feed-sign:<D>`) the sequencing and each department's signing run in their
        transactions, when the follower runs under leases (`feed run`)."""
        self.sequencer_fence = sequencer_fence
        self.signer_fence = signer_fence
        self.feed = FeedStore(store, vault)
        self.subscriptions = Subscriptions(self.feed, vault)
        self.reconciler = ChainReconciler(store, ledger, catalog, vault)
        self.indexer = EventIndexer(store, ledger, confirmations, self.reconciler.reconcile)
        self.builder = FeedBuilder(
            self.feed, ledger, catalog, vault, report_keys, confirmations=confirmations
        )
        self.deliverer = WebhookDeliverer(self.subscriptions, policy, client=client, clock=clock)
        # One step at a time per follower: the service may call it from a thread.
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the webhook connections."""
        self.deliverer.close()

    def step(self) -> StepResult:
        """Index, build what is confirmed (until caught up), deliver what is due."""
        indexed, appended, redacted = self.advance()
        return StepResult(indexed, appended, self.deliver(), self.builder.blocked_on, redacted)

    def advance(self) -> tuple[int, int, int]:
        """Index new confirmed events, sequence them (signing those whose report key is
        here), sign the places awaiting a key held here, redact the records of erased
        commitments: (indexed, records signed, redacted)."""
        with self._lock:
            indexed = self.indexer.sync()
            appended = 0
            while True:
                entries = self.builder.build(fence=self.sequencer_fence)
                appended += sum(isinstance(entry, FeedRecord) for entry in entries)
                if len(entries) < self.builder.limit:
                    break
            # The places sequenced earlier for a key not there then (or by another instance).
            if self.signer_fence is None:
                appended += len(self.builder.sign())
            else:
                for department in self.feed.waiting_departments():
                    fence = self.signer_fence(department)
                    appended += len(self.builder.sign(department, fence=fence))
            return indexed, appended, self.builder.redact()

    def deliver(self) -> int:
        """Push what is due to the webhook subscribers (no chain access)."""
        return self.deliverer.deliver()

    def run(
        self,
        *,
        until_idle: bool = False,
        interval_s: float = 1.0,
        stop: threading.Event | None = None,
        on_step: Callable[[StepResult], None] | None = None,
    ) -> None:
        """Repeat `step`; return when a step finds nothing to do (`until_idle`) or on `stop`."""
        stop = stop or threading.Event()
        while not stop.is_set():
            result = self.step()
            if on_step is not None:
                on_step(result)
            if not result:
                if until_idle:
                    return
                stop.wait(interval_s)
