"""When a call is tried again, and after how long.

The gateway's answers that say "later" are 429 (the client's rate limit) and 503 (its database is
unreachable, or it is at its limit of requests in flight), both with ``Retry-After``; a connection
that could not be made, or broke, may succeed on the next try. Those are retried, up to
``max_attempts`` in all, after ``Retry-After`` when the gateway gave one (it knows when it will
take the call; earlier only earns another refusal), else after an exponential delay with equal
jitter (half fixed, half random, so that clients that failed together do not retry together).

A retry of ``send`` repeats its ``Idempotency-Key`` (the client makes one per send unless given):
when the first attempt was stored and only its answer was lost, the gateway answers the repeat
with the first answer and sends nothing twice. A call that is not safe to repeat (rotating the
callback secret) is retried only when the gateway cannot have acted on it: a refused connection,
a 429 or a 503.

This package is installed on its own, so it does not import the services' ``shared/backoff.py``
(whose ``exponential_delay`` and ``retry_after_seconds`` these mirror), nor can that module
import this one: the senders keep httpx out of their processes (``shared/lean_process.py``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRIED_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` tries in all (1: no retries); waits of ``base_seconds * 2**(n-1)`` capped at
    ``max_seconds`` with equal jitter, or the gateway's ``Retry-After`` unless it is longer than
    ``max_retry_after_seconds`` (then the error is raised at once, with its ``retry_after``)."""

    max_attempts: int = 4
    base_seconds: float = 0.5
    max_seconds: float = 8.0
    max_retry_after_seconds: float = 60.0

    def delay(self, attempt: int, *, retry_after: float | None = None, rng: random.Random | None = None) -> float | None:
        """Seconds to wait after failed attempt number ``attempt`` (1-based); None: do not retry."""
        if attempt >= self.max_attempts:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after_seconds else None
        # Bound the exponent first: 2**1000 overflows a float long before the cap applies.
        delay = min(self.max_seconds, self.base_seconds * 2 ** min(max(attempt - 1, 0), 32))
        return delay / 2 + (rng or random).uniform(0, delay / 2)


NO_RETRIES = RetryPolicy(max_attempts=1)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date, never negative); None
    when there is none or it is neither."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)
