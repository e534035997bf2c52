"""Token buckets: burst, refill rate, arrival order, one bucket per key."""

from __future__ import annotations

import asyncio
import time

import pytest

from shared import token_bucket
from shared.token_bucket import KeyedRateLimiter, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class TestTokenBucket:
    def test_burst_is_free_then_one_token_per_interval(self) -> None:
        clock = FakeClock()
        bucket = TokenBucket(rate=2, burst=3, clock=clock)
        assert [bucket.reserve() for _ in range(3)] == [0, 0, 0]
        # In debt: each further caller waits for its own token, in arrival order.
        assert [bucket.reserve() for _ in range(3)] == [0.5, 1.0, 1.5]

    def test_refills_at_rate_up_to_burst(self) -> None:
        clock = FakeClock()
        bucket = TokenBucket(rate=10, burst=5, clock=clock)
        for _ in range(5):
            bucket.reserve()
        clock.advance(0.3)  # three tokens back
        assert [bucket.reserve() for _ in range(4)] == [0, 0, 0, pytest.approx(0.1)]
        clock.advance(3600)
        assert [bucket.reserve() for _ in range(5)] == [0] * 5, "never more than burst"
        assert bucket.reserve() == pytest.approx(0.1)

    def test_idle_once_full_again(self) -> None:
        clock = FakeClock()
        bucket = TokenBucket(rate=1, burst=2, clock=clock)
        bucket.reserve()
        assert not bucket.idle
        clock.advance(1)
        assert bucket.idle

    @pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
    def test_rejects_nonsense(self, rate: float, burst: int) -> None:
        with pytest.raises(ValueError):
            TokenBucket(rate=rate, burst=burst)

    async def test_acquire_sleeps_for_the_reserved_turn(self) -> None:
        bucket = TokenBucket(rate=20, burst=1)
        started = time.monotonic()
        await asyncio.gather(*(bucket.acquire() for _ in range(5)))
        # One free token, then four more at 20/s: at least 0.2 s.
        assert time.monotonic() - started >= 0.19


class TestKeyedRateLimiter:
    def test_each_key_has_its_own_bucket(self) -> None:
        clock = FakeClock()
        limiter = KeyedRateLimiter(rate=1, burst=5, clock=clock)
        assert [limiter.reserve("C1") for _ in range(6)] == [0, 0, 0, 0, 0, 1.0]
        assert limiter.reserve("C2") == 0
        assert len(limiter) == 2

    def test_idle_buckets_are_dropped_when_there_are_many(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(token_bucket, "MAX_IDLE_BUCKETS", 3)
        clock = FakeClock()
        limiter = KeyedRateLimiter(rate=1, burst=1, clock=clock)
        for key in ("a", "b", "c"):
            limiter.reserve(key)
        clock.advance(10)
        limiter.reserve("busy")  # triggers the clean-up: a, b, c are full again
        assert len(limiter) == 1
        assert limiter.reserve("busy") == 1.0, "the busy key keeps its debt"

    def test_validates_on_creation(self) -> None:
        with pytest.raises(ValueError):
            KeyedRateLimiter(rate=0, burst=1)
