"""notifications_client/_retry.py: the waits between attempts."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from notifications_client import NO_RETRIES, RetryPolicy
from notifications_client._retry import parse_retry_after


class TestRetryPolicyDelay:
    def test_exponential_with_equal_jitter(self) -> None:
        policy = RetryPolicy(max_attempts=10, base_seconds=0.5, max_seconds=8.0)
        for attempt, full in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0)):
            delays = [policy.delay(attempt, rng=random.Random(seed)) for seed in range(50)]
            assert all(full / 2 <= delay <= full for delay in delays), (attempt, delays)
            assert len(set(delays)) > 1, "jittered"

    def test_retry_after_wins_exactly(self) -> None:
        assert RetryPolicy().delay(1, retry_after=3.0) == 3.0
        assert RetryPolicy().delay(3, retry_after=0.0) == 0.0

    def test_a_retry_after_longer_than_allowed_is_not_waited_for(self) -> None:
        assert RetryPolicy(max_retry_after_seconds=10).delay(1, retry_after=11) is None

    def test_gives_up_after_max_attempts(self) -> None:
        policy = RetryPolicy(max_attempts=3)
        assert policy.delay(2) is not None
        assert policy.delay(3) is None and policy.delay(3, retry_after=1) is None
        assert NO_RETRIES.delay(1) is None

    def test_huge_attempt_numbers_stay_capped(self) -> None:
        assert RetryPolicy(max_attempts=10_000, max_seconds=8).delay(5000, rng=random.Random(1)) <= 8


class TestParseRetryAfter:
    @pytest.mark.parametrize(("value", "seconds"), [("3", 3.0), ("0.5", 0.5), ("-2", 0.0), (None, None), ("", None), ("soon", None)])
    def test_delta_seconds(self, value: str | None, seconds: float | None) -> None:
        assert parse_retry_after(value) == seconds

    def test_http_date(self) -> None:
        now = datetime(2026, 12, 2, 1, 0, 0, tzinfo=UTC)
        assert parse_retry_after("Wed, 02 Dec 2026 01:00:30 GMT", now=now) == 30.0
        assert parse_retry_after("Wed, 02 Dec 2026 00:59:00 GMT", now=now) == 0.0
