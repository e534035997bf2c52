"""How long a sender waits before a message is retried: one function, used for every channel."""

from __future__ import annotations

import math
import random

# SQS refuses a visibility timeout above 12 hours.
MAX_VISIBILITY_TIMEOUT_SECONDS = 12 * 3600


def compute_backoff(
    attempt: int,
    *,
    base_seconds: float,
    max_seconds: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> int:
    """Whole seconds until the next attempt after failed attempt number ``attempt`` (1-based).

    Exponential (``base * 2**(attempt-1)``, capped at ``max_seconds``) with "equal jitter": half
    the delay is fixed, half random, so replicas that failed together do not retry together but
    nobody retries at once. A provider's ``Retry-After`` wins: it knows when it will accept
    again, and retrying earlier only earns another 429. Rounded up because SQS visibility
    timeouts are whole seconds.
    """
    if retry_after is not None:
        return _clamp(math.ceil(max(retry_after, 0.0)))
    exponent = max(attempt - 1, 0)
    # Bound the exponent first: 2**1000 overflows a float long before the cap applies.
    delay = min(max_seconds, base_seconds * 2 ** min(exponent, 32))
    half = delay / 2
    jittered = half + (rng or random).uniform(0, half)
    return _clamp(math.ceil(jittered))


def _clamp(seconds: int) -> int:
    return max(0, min(seconds, MAX_VISIBILITY_TIMEOUT_SECONDS))
