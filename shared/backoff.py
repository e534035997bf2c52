"""How long to wait before trying again: one function, and every retry in the project as a named
policy over it.

``exponential_delay`` is the arithmetic (exponential, capped, optionally jittered). A
``BackoffPolicy`` names one use of it. ``compute_backoff`` is the sender's message retry (whole
seconds, for SQS visibility timeouts, and a provider's ``Retry-After`` wins).

The policies
------------
- ``RECEIVE_ERRORS``: a sender's ReceiveMessage failed (SQS unreachable): 1, 2, 4 ... 30 s.
- ``QUEUE_RESOLUTION``: a sender starting before its queues exist: 0.5, 1, 2 ... 10 s.
- ``SQS_DELETE_RETRY``: one more DeleteMessageBatch after a failed one, 0.5 s later.
- ``RECORD_SENT``: recording ``sent`` while Postgres is unreachable: 0.5, 1, 2 ... 30 s, eight
  attempts, about a minute in all (long enough to outlast a Postgres restart).
- ``database_pause(settings)``: a sender pauses receiving while the database is down (doubling
  from ``backoff_base_seconds`` to ``backoff_max_seconds``).
- ``compute_backoff(receive count, ...)``: a message's next attempt after a transient failure
  (the sender's ``backoff_base_seconds`` / ``backoff_max_seconds``, or the provider's
  ``Retry-After``).
- ``outbox_retry(max_seconds)``: the outbox relay's next attempt at a row SNS did not take
  (jittered, from 1 s up to ``GATEWAY_OUTBOX_MAX_BACKOFF_SECONDS``).
- ``compute_backoff(attempt, ...)`` with ``CALLBACKS_BACKOFF_BASE_SECONDS`` /
  ``CALLBACKS_BACKOFF_MAX_SECONDS``: a status callback's next attempt after a connection error,
  a timeout, a 5xx or a 429 (the receiver's ``Retry-After`` wins), for up to
  ``CALLBACKS_RETRY_FOR_SECONDS`` (``callback_sender/worker.py``).

``retry_after_seconds`` reads a ``Retry-After`` header (delta-seconds or an HTTP date), for every
caller that honours one (the Slack sender, the callback sender).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# SQS refuses a visibility timeout above 12 hours.
MAX_VISIBILITY_TIMEOUT_SECONDS = 12 * 3600


def exponential_delay(
    attempt: int, *, base_seconds: float, max_seconds: float, jitter: bool = True, rng: random.Random | None = None
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): ``base * 2**(attempt-1)``,
    capped at ``max_seconds``. With ``jitter``, "equal jitter": half the delay is fixed, half
    random, so replicas that failed together do not retry together but nobody retries at once."""
    exponent = max(attempt - 1, 0)
    # Bound the exponent first: 2**1000 overflows a float long before the cap applies.
    delay = min(max_seconds, base_seconds * 2 ** min(exponent, 32))
    if not jitter:
        return delay
    half = delay / 2
    return half + (rng or random).uniform(0, half)


@dataclass(frozen=True)
class BackoffPolicy:
    """One retry policy: its delays, and (when it gives up) how many attempts it makes."""

    base_seconds: float
    max_seconds: float
    jitter: bool = False
    max_attempts: int | None = None  # None: retries for as long as the caller keeps failing

    def delay(self, attempt: int, *, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return exponential_delay(
            attempt, base_seconds=self.base_seconds, max_seconds=self.max_seconds, jitter=self.jitter, rng=rng
        )

    def delays(self) -> list[float]:
        """The waits between the attempts of a policy with ``max_attempts`` (one fewer than those)."""
        if self.max_attempts is None:
            raise ValueError("a policy without max_attempts has no end")
        return [self.delay(attempt) for attempt in range(1, self.max_attempts)]


RECEIVE_ERRORS = BackoffPolicy(base_seconds=1.0, max_seconds=30.0)
QUEUE_RESOLUTION = BackoffPolicy(base_seconds=0.5, max_seconds=10.0)
SQS_DELETE_RETRY = BackoffPolicy(base_seconds=0.5, max_seconds=0.5, max_attempts=2)
RECORD_SENT = BackoffPolicy(base_seconds=0.5, max_seconds=30.0, max_attempts=8)


def database_pause(*, base_seconds: float, max_seconds: float) -> BackoffPolicy:
    """A sender's pause in receiving while the database is unreachable (the sender's settings)."""
    return BackoffPolicy(base_seconds=base_seconds, max_seconds=max_seconds)


def outbox_retry(*, max_seconds: float) -> BackoffPolicy:
    """The relay's wait before it tries a row SNS did not take again."""
    return BackoffPolicy(base_seconds=1.0, max_seconds=max_seconds, jitter=True)


def compute_backoff(
    attempt: int,
    *,
    base_seconds: float,
    max_seconds: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> int:
    """Whole seconds until a message's next attempt after failed attempt number ``attempt``.

    ``exponential_delay`` with jitter, rounded up because SQS visibility timeouts are whole
    seconds. A provider's ``Retry-After`` wins: it knows when it will accept again, and retrying
    earlier only earns another 429.
    """
    if retry_after is not None:
        return _clamp(math.ceil(max(retry_after, 0.0)))
    return _clamp(math.ceil(exponential_delay(attempt, base_seconds=base_seconds, max_seconds=max_seconds, rng=rng)))


def _clamp(seconds: int) -> int:
    return max(0, min(seconds, MAX_VISIBILITY_TIMEOUT_SECONDS))


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date (never negative);
    None when there is none or it is neither."""
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
