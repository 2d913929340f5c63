"""Token buckets that pace Temporal API calls, so a refresh never trips the server's limits.

Temporal limits visibility calls (Count/ListWorkflowExecutions) to about 10 per second per
namespace by default, and a refresh that exceeded it would get RESOURCE_EXHAUSTED and slow the
namespace's real users down. Calls reserve a token and sleep off any deficit, which keeps waiting
callers in arrival order and never lets the rate exceed `rate` (plus a burst of `burst`).
"""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    """An asyncio token bucket; `acquire()` returns how long the caller waited."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = float(rate)
        self.capacity = float(burst if burst is not None else max(1.0, rate))
        self._tokens = self.capacity
        self._updated = time.monotonic()

    async def acquire(self) -> float:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        delay = -self._tokens / self.rate
        await asyncio.sleep(delay)
        return delay


class BucketsByKey:
    """One bucket per key (namespace), created on first use."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, TokenBucket] = {}

    def get(self, key: str) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst)
        return bucket
