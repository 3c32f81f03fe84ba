"""Background tasks under leases: each role runs in one of the instances sharing a store.

A department's anchoring (`anchor:<D>`), the registry's indexing and reconciliation with
the chain (`reconcile`, any instance), the feed's sequencing (`feed`, any instance with the
feed on) and each department's feed signing (`feed-sign:<D>`, an instance holding D's report
key and the master key), the lifecycle job (`lifecycle`) and the notices'
delivery (`notices`) are each held by one instance at a time (`ledger.LeaseKeeper`); the
others ask at every poll and take the role over within the lease's ttl and one poll
interval once its holder stops renewing it (killed, or cut off from the database). The
roles spread over the instances: each seeks its fair share of those it may hold, and one
over its share hands a role over after the step under way (`ledger.lease_instances`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ledger import LeaseKeeper

FEED_LEASE = "feed"
RECONCILE_LEASE = "reconcile"
LIFECYCLE_LEASE = "lifecycle"
NOTICES_LEASE = "notices"


def anchor_lease(department: str) -> str:
    """The lease of a department's anchoring."""
    return f"anchor:{department}"


def feed_sign_lease(department: str) -> str:
    """The lease of the signing of a department's feed records."""
    return f"feed-sign:{department}"


class LeasedStep:
    """A background step run only while this instance holds `lease`: at once when the lease
    was just taken or the step did work, else every `interval_s` (the task itself is
    registered with the keeper's poll interval, so a lease taken over starts its work then).
    """

    def __init__(
        self, keeper: LeaseKeeper, lease: str, step: Callable[[], object], interval_s: float
    ) -> None:
        self.keeper = keeper
        self.lease = lease
        self.step = step
        self.interval_s = interval_s
        self._token: int | None = None
        self._next = 0.0
        keeper.want(lease)

    @property
    def poll_s(self) -> float:
        """How often the task should look (the lease's poll, or the step's own interval)."""
        return min(self.keeper.poll, self.interval_s)

    def __call__(self) -> object:
        # Inside `acting`: a hand-over of the lease to another instance (the fair share)
        # waits until this step is done.
        with self.keeper.acting(self.lease) as token:
            if token is None:
                self._token = None
                return False
            now = time.monotonic()
            if token == self._token and now < self._next:
                return False
            self._token = token
            did_work = self.step()
            self._next = now if did_work else now + self.interval_s
            return did_work
