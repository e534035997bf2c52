"""Per-process provider rate limits: token buckets, optionally one per key (a Slack channel).

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second. Callers
*reserve* a token: when none is left the bucket goes into debt and the caller sleeps until its
token has been earned. Waiters are therefore served in arrival order and wake exactly when it
is their turn, instead of all polling the bucket together.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

Clock = Callable[[], float]


class RateLimiter(Protocol):
    """What a sender's sends wait on: this module's per-process buckets, or the ones its replicas
    share (``shared/provider_rate_limit.py``)."""

    async def acquire(self, key: str) -> None: ...

# Buckets of idle keys are dropped once there are this many, so a sender that posts to
# thousands of Slack channels does not keep a bucket for each forever.
MAX_IDLE_BUCKETS = 1024


class TokenBucket:
    def __init__(self, *, rate: float, burst: int, clock: Clock = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def reserve(self) -> float:
        """Take one token; returns the seconds to wait before using it (0 when one was there)."""
        self._refill()
        self._tokens -= 1
        # Refills are floats; a debt of 1e-14 token is rounding, not a reason to sleep.
        return 0.0 if self._tokens > -1e-9 else -self._tokens / self.rate

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)

    @property
    def idle(self) -> bool:
        """Full again: nobody has used it for at least ``burst / rate`` seconds."""
        self._refill()
        return self._tokens >= self.burst

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
        self._updated = now


class KeyedRateLimiter:
    """One token bucket per key, all with the same rate and burst."""

    def __init__(self, *, rate: float, burst: int, clock: Clock = time.monotonic) -> None:
        TokenBucket(rate=rate, burst=burst, clock=clock)  # validate now, not at the first send
        self.rate, self.burst = rate, burst
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def bucket(self, key: str) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_IDLE_BUCKETS:
                self._drop_idle()
            bucket = self._buckets[key] = TokenBucket(rate=self.rate, burst=self.burst, clock=self._clock)
        return bucket

    def reserve(self, key: str) -> float:
        return self.bucket(key).reserve()

    async def acquire(self, key: str) -> None:
        await self.bucket(key).acquire()

    def __len__(self) -> int:
        return len(self._buckets)

    def _drop_idle(self) -> None:
        # A full bucket behaves exactly like a new one, so dropping it changes nothing.
        for key in [key for key, bucket in self._buckets.items() if bucket.idle]:
            del self._buckets[key]
