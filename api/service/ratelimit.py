"""A token bucket per client, in memory: enough for one process serving the public."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_CLIENTS = 10_000  # buckets kept; full (idle) ones are dropped first beyond this


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

    def take(self, client: str) -> float:
        """Spend one token of `client`: 0.0 if allowed, else seconds until one is back."""
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(client)
            if bucket is None:
                self._make_room(now)
                bucket = self._buckets[client] = _Bucket(float(self.burst), now)
            bucket.tokens = min(
                float(self.burst), bucket.tokens + (now - bucket.updated) * self.per_second
            )
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.per_second

    @staticmethod
    def retry_after(wait: float) -> str:
        """The Retry-After header value: whole seconds, at least one."""
        return str(max(1, math.ceil(wait)))

    def _make_room(self, now: float) -> None:
        if len(self._buckets) < MAX_CLIENTS:
            return
        refill = self.burst / self.per_second  # seconds for an empty bucket to fill
        idle = [k for k, b in self._buckets.items() if now - b.updated >= refill]
        for key in idle or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[key]
