"""compute_backoff: exponential with equal jitter, capped, Retry-After first, whole seconds; and the named policies."""

from __future__ import annotations

import random

import pytest

from shared.backoff import (
    MAX_VISIBILITY_TIMEOUT_SECONDS,
    QUEUE_RESOLUTION,
    RECEIVE_ERRORS,
    RECORD_SENT,
    SQS_DELETE_RETRY,
    compute_backoff,
    database_pause,
    outbox_retry,
)


class TestComputeBackoff:
    @pytest.mark.parametrize(("attempt", "low", "high"), [(1, 1, 2), (2, 2, 4), (3, 4, 8), (4, 8, 16)])
    def test_doubles_per_attempt_within_jitter_bounds(self, attempt: int, low: int, high: int) -> None:
        rng = random.Random(7)
        delays = {compute_backoff(attempt, base_seconds=2, max_seconds=300, rng=rng) for _ in range(200)}
        assert min(delays) >= low
        assert max(delays) <= high

    def test_jitter_spreads_replicas_that_failed_together(self) -> None:
        rng = random.Random(3)
        delays = {compute_backoff(4, base_seconds=2, max_seconds=300, rng=rng) for _ in range(200)}
        assert len(delays) >= 4

    def test_capped_at_max_seconds(self) -> None:
        rng = random.Random(1)
        delays = [compute_backoff(30, base_seconds=2, max_seconds=60, rng=rng) for _ in range(100)]
        assert all(30 <= delay <= 60 for delay in delays)

    def test_huge_attempt_does_not_overflow(self) -> None:
        assert compute_backoff(10_000, base_seconds=5, max_seconds=300) <= 300

    def test_retry_after_wins_over_the_exponential_delay(self) -> None:
        assert compute_backoff(1, base_seconds=2, max_seconds=300, retry_after=30) == 30
        assert compute_backoff(5, base_seconds=60, max_seconds=600, retry_after=3) == 3

    def test_retry_after_is_rounded_up_to_whole_seconds(self) -> None:
        assert compute_backoff(1, base_seconds=2, max_seconds=300, retry_after=1.2) == 2

    def test_retry_after_zero_or_negative_means_now(self) -> None:
        assert compute_backoff(3, base_seconds=2, max_seconds=300, retry_after=0) == 0
        assert compute_backoff(3, base_seconds=2, max_seconds=300, retry_after=-5) == 0

    def test_never_above_the_sqs_visibility_limit(self) -> None:
        assert compute_backoff(1, base_seconds=2, max_seconds=300, retry_after=10**9) == MAX_VISIBILITY_TIMEOUT_SECONDS
        assert compute_backoff(40, base_seconds=10**6, max_seconds=10**9) == MAX_VISIBILITY_TIMEOUT_SECONDS

    def test_small_base_never_rounds_to_zero(self) -> None:
        assert compute_backoff(1, base_seconds=0.1, max_seconds=10) == 1


class TestPolicies:
    def test_the_named_policies_delays(self) -> None:
        assert [RECEIVE_ERRORS.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
        assert [QUEUE_RESOLUTION.delay(n) for n in range(1, 7)] == [0.5, 1, 2, 4, 8, 10]
        assert SQS_DELETE_RETRY.delays() == [0.5]
        # About a minute in all, to outlast a Postgres restart.
        assert RECORD_SENT.delays() == [0.5, 1, 2, 4, 8, 16, 30]
        pause = database_pause(base_seconds=5, max_seconds=300)
        assert [pause.delay(n) for n in (1, 2, 3, 100)] == [5, 10, 20, 300]

    def test_a_jittered_policy_stays_within_half_and_all_of_the_delay(self) -> None:
        rng = random.Random(7)
        policy = outbox_retry(max_seconds=60)
        delays = [policy.delay(4, rng=rng) for _ in range(200)]
        assert all(4 <= delay <= 8 for delay in delays)
        assert len(set(delays)) > 100
        assert max(policy.delay(50, rng=rng) for _ in range(50)) <= 60

    def test_an_endless_policy_has_no_list_of_delays(self) -> None:
        with pytest.raises(ValueError, match="no end"):
            RECEIVE_ERRORS.delays()
