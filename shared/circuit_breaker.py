"""A circuit breaker per provider: stop calling a provider that keeps failing, probe it after a cool-down.

- **Closed** (normal): every call goes through. It *opens* after ``failure_threshold``
  consecutive transient failures, or when more than ``error_rate`` of the calls of the last
  ``window_seconds`` failed (counted once the window holds ``minimum_calls``), or at once when
  :meth:`CircuitBreaker.trip` says the provider refused our account or configuration.
- **Open**: no calls, for ``cooldown_seconds``; then it is *half-open*.
- **Half-open**: one call at a time goes through as a probe. Success closes the breaker (and
  forgets the past failures), failure opens it for another cool-down.

A failure that concerns the recipient (invalid number) counts as a success here: the provider
answered. Hand-written rather than pybreaker/aiobreaker/purgatory: those count consecutive
failures only (no error-rate window) and wrap the call themselves, while the failover
(``shared/failover.py``) must choose a provider before calling it and classify the outcome after.
The clock is injectable, so the states are tested without waiting.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int = 5
    error_rate: float = 0.5
    window_seconds: float = 60.0
    minimum_calls: int = 20
    cooldown_seconds: float = 30.0


class CircuitBreaker:
    def __init__(self, policy: BreakerPolicy, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._consecutive_failures = 0
        self._outcomes: deque[tuple[float, bool]] = deque()  # (when, failed) within the window
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() >= self._opened_at + self.policy.cooldown_seconds:
            self._state = BreakerState.HALF_OPEN
        return self._state

    def seconds_until_call(self) -> float:
        """0 when a call may go through now, else how long until a probe may (at least)."""
        state = self.state
        if state is BreakerState.CLOSED or (state is BreakerState.HALF_OPEN and not self._probing):
            return 0.0
        if state is BreakerState.HALF_OPEN:
            # The probe under way decides; it is bounded by the send timeout.
            return 1.0
        return max(self._opened_at + self.policy.cooldown_seconds - self._clock(), 0.0)

    def acquire(self) -> bool:
        """Whether a call may go through now; in half-open, the caller holds the one probe."""
        if self.seconds_until_call() > 0:
            return False
        if self._state is BreakerState.HALF_OPEN:
            self._probing = True
        return True

    def record_success(self) -> None:
        self._probing = False
        if self._state is not BreakerState.CLOSED:
            self._close()
            return
        self._consecutive_failures = 0
        self._remember(failed=False)

    def record_failure(self) -> None:
        self._probing = False
        if self._state is not BreakerState.CLOSED:
            self._open()
            return
        self._consecutive_failures += 1
        self._remember(failed=True)
        if self._consecutive_failures >= self.policy.failure_threshold or self._error_rate_exceeded():
            self._open()

    def trip(self) -> None:
        """Open now: the provider refused our account or configuration, not this one message."""
        self._probing = False
        self._open()

    def _remember(self, *, failed: bool) -> None:
        now = self._clock()
        self._outcomes.append((now, failed))
        while self._outcomes and self._outcomes[0][0] < now - self.policy.window_seconds:
            self._outcomes.popleft()

    def _error_rate_exceeded(self) -> bool:
        calls = len(self._outcomes)
        if calls < self.policy.minimum_calls:
            return False
        return sum(failed for _, failed in self._outcomes) / calls > self.policy.error_rate

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()

    def _close(self) -> None:
        self._state = BreakerState.CLOSED
        self._consecutive_failures = 0
        self._outcomes.clear()
