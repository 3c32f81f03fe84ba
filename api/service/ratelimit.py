"""A token bucket per client, in memory: enough for one process serving the public."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_CLIENTS = 10_000  # buckets kept; beyond this only full (idle) ones are dropped
# When the table is full of clients still spending, new addresses share this one bucket:
# dropping a client's drained bucket would hand it a full one (a flood of new addresses
# would reset everyone's limit), so no bucket that is not full is ever dropped.
OVERFLOW = "(overflow)"
SWEEP_INTERVAL_S = 1.0  # a full table is searched for refilled buckets at most this often


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`burst` requests at once per client, refilled at `per_second`."""

    def __init__(
        self,
        burst: int,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or per_second <= 0:
            raise ValueError("a rate limit needs burst >= 1 and per_second > 0")
        self.burst = burst
        self.per_second = per_second
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        self._next_sweep = -math.inf

    def take(self, client: str) -> float:
        """Spend one token of `client`: 0.0 if allowed, else seconds until one is back."""
        with self._lock:
            now = self._clock()
            bucket = self._bucket(client, now)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.per_second

    def wait(self, client: str) -> float:
        """Seconds until `client` has a token again (0.0 if it has one); spends nothing."""
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                return 0.0
            tokens = min(
                float(self.burst),
                bucket.tokens + (self._clock() - bucket.updated) * self.per_second,
            )
            return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.per_second

    def __len__(self) -> int:
        return len(self._buckets)

    @staticmethod
    def retry_after(wait: float) -> str:
        """The Retry-After header value: whole seconds, at least one."""
        return str(max(1, math.ceil(wait)))

    def _bucket(self, client: str, now: float) -> _Bucket:
        bucket = self._buckets.get(client)
        if bucket is None:
            if self._make_room(now):
                bucket = self._buckets[client] = _Bucket(float(self.burst), now)
            else:
                bucket = self._buckets.setdefault(OVERFLOW, _Bucket(float(self.burst), now))
        bucket.tokens = min(
            float(self.burst), bucket.tokens + (now - bucket.updated) * self.per_second
        )
        bucket.updated = now
        return bucket

    def _make_room(self, now: float) -> bool:
        """Whether a new client may have a bucket of its own: there is room, or room was
        made by dropping buckets that have refilled (a new bucket would be the same)."""
        if len(self._buckets) < MAX_CLIENTS:
            return True
        if now < self._next_sweep:  # a flood of new addresses must not cost a scan each
            return False
        self._next_sweep = now + SWEEP_INTERVAL_S
        idle = [
            k
            for k, b in self._buckets.items()
            if k != OVERFLOW and b.tokens + (now - b.updated) * self.per_second >= self.burst
        ]
        for key in idle:
            del self._buckets[key]
        return len(self._buckets) < MAX_CLIENTS
