"""CircuitBreaker's states on an injected clock: when it opens, how it probes, when it closes."""

from __future__ import annotations

from shared.circuit_breaker import BreakerPolicy, BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(**policy: float) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    values = {"failure_threshold": 3, "error_rate": 0.5, "window_seconds": 60, "minimum_calls": 10, "cooldown_seconds": 30}
    values.update(policy)
    return CircuitBreaker(BreakerPolicy(**values), clock=clock), clock  # type: ignore[arg-type]


class TestConsecutiveFailures:
    def test_opens_at_the_threshold_and_not_before(self) -> None:
        subject, _ = breaker()
        for _ in range(2):
            assert subject.acquire()
            subject.record_failure()
        assert subject.state is BreakerState.CLOSED
        subject.record_failure()
        assert subject.state is BreakerState.OPEN
        assert not subject.acquire()

    def test_a_success_resets_the_count(self) -> None:
        subject, _ = breaker()
        for _ in range(2):
            subject.record_failure()
        subject.record_success()
        for _ in range(2):
            subject.record_failure()
        assert subject.state is BreakerState.CLOSED


class TestErrorRate:
    def test_opens_above_the_rate_once_the_window_holds_the_minimum(self) -> None:
        subject, clock = breaker(failure_threshold=100, minimum_calls=10, error_rate=0.5)
        # Alternating: never 2 in a row, 5 of 9 failed: below the minimum of calls.
        for index in range(9):
            clock.now += 1
            subject.record_failure() if index % 2 == 0 else subject.record_success()
        assert subject.state is BreakerState.CLOSED
        clock.now += 1
        subject.record_failure()  # 6 of 10 failed
        assert subject.state is BreakerState.OPEN

    def test_outcomes_older_than_the_window_do_not_count(self) -> None:
        subject, clock = breaker(failure_threshold=100, minimum_calls=4, window_seconds=10)
        for _ in range(3):
            subject.record_failure()
            subject.record_success()
        clock.now += 11
        for _ in range(3):
            subject.record_success()
        subject.record_failure()  # 1 of 4 in the window
        assert subject.state is BreakerState.CLOSED


class TestHalfOpen:
    def test_one_probe_after_the_cooldown_and_success_closes(self) -> None:
        subject, clock = breaker()
        subject.trip()
        assert subject.seconds_until_call() == 30
        clock.now += 29.5
        assert not subject.acquire()
        clock.now += 0.5
        assert subject.state is BreakerState.HALF_OPEN
        assert subject.acquire()
        assert not subject.acquire(), "one probe at a time"
        subject.record_success()
        assert subject.state is BreakerState.CLOSED
        assert subject.acquire() and subject.acquire()

    def test_a_failed_probe_opens_for_another_cooldown(self) -> None:
        subject, clock = breaker()
        subject.trip()
        clock.now += 30
        assert subject.acquire()
        subject.record_failure()
        assert subject.state is BreakerState.OPEN
        assert subject.seconds_until_call() == 30

    def test_closing_forgets_the_failures_before(self) -> None:
        subject, clock = breaker()
        for _ in range(3):
            subject.record_failure()
        clock.now += 30
        assert subject.acquire()
        subject.record_success()
        subject.record_failure()
        subject.record_failure()
        assert subject.state is BreakerState.CLOSED
