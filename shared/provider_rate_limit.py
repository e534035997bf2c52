"""A provider's rate limit shared by every replica of a sender: one token bucket per key in Postgres.

SNS SMS and SES limit the account, not a process: with N replicas each holding its own bucket of
``RATE_LIMIT_PER_SECOND``, N times the quota would reach the provider, which throttles, and every
throttled send spends one of its message's five receives. With ``*_SENDER_RATE_LIMIT_SHARED``
(default on for SMS and email) the replicas draw from one bucket per key (the channel; for Slack,
were it on, a Slack channel) in the UNLOGGED table ``provider_rate_limit_buckets``, the same kind
of bucket the gateway's per-client limits keep (``gateway/client_rate_limit.py`` says why
Postgres and not Redis, and why UNLOGGED).

How a send gets its token
-------------------------
Like the per-process bucket (``shared/token_bucket.py``), a send *reserves* a token and the
bucket may go into debt: the reservation says how long to sleep until the token is earned, so
waiters are served in order and wake when it is their turn, across replicas as within one. The
reservations a process makes while its previous statement is in flight (a received batch of
messages all ask in the same turn of the event loop) go to Postgres as one UPDATE of the row
(``shared/batching.py``): one statement per batch of sends, not per send. The database's clock
is the only clock.

When Postgres cannot be reached, a send takes its token from the process's own bucket instead:
the claim that follows needs Postgres too, fails, and leaves the message for later
(``shared/consumer.py``), so the limit is not what decides then. A replica that dies holding
reservations wastes them: the bucket refills at the same rate, and the others wait a little more.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from shared.batching import StatementBatcher
from shared.database import Database, is_database_unavailable
from shared.logging import get_logger
from shared.token_bucket import KeyedRateLimiter

log = get_logger(__name__)

# Refill each key's bucket, take its reservations (into debt if need be), return what is left.
# $1 keys, $2 tokens each takes, $3 rate per second, $4 burst.
_RESERVE = """
    INSERT INTO provider_rate_limit_buckets AS b (key, tokens, updated_at)
    SELECT r.key, $4::float8 - r.taken, clock_timestamp() FROM unnest($1::text[], $2::int[]) AS r(key, taken)
    ON CONFLICT (key) DO UPDATE SET
        tokens = LEAST($4::float8, b.tokens + GREATEST(0, extract(epoch FROM clock_timestamp() - b.updated_at)) * $3::float8)
                 - ($4::float8 - EXCLUDED.tokens),
        updated_at = clock_timestamp()
    RETURNING key, tokens
"""


class SharedRateLimiter:
    """``acquire(key)``, as ``KeyedRateLimiter``'s, from buckets every replica shares."""

    def __init__(self, database: Database, *, rate: float, burst: int) -> None:
        self._database = database
        self.rate, self.burst = rate, burst
        self._fallback = KeyedRateLimiter(rate=rate, burst=burst)  # validates rate and burst too
        self._batcher: StatementBatcher[str, float] = StatementBatcher(self._reserve)

    async def acquire(self, key: str) -> None:
        try:
            delay = await self._batcher.submit(key)
        except Exception as exc:
            if not is_database_unavailable(exc):
                raise
            log.warning("shared_rate_limit_unavailable", error=str(exc))
            delay = self._fallback.reserve(key)
        if delay > 0:
            await asyncio.sleep(delay)

    async def _reserve(self, keys: list[str]) -> list[float]:
        """The delay of each reservation, in order: the i-th of a key's n waits until the bucket,
        which held ``left + n`` before them, has earned its i-th token."""
        taken = Counter(keys)
        async with self._database.connection() as connection:
            rows = await connection.fetch(_RESERVE, list(taken), list(taken.values()), self.rate, float(self.burst))
        before = {row["key"]: row["tokens"] + taken[row["key"]] for row in rows}
        seen: Counter[str] = Counter()
        delays = []
        for key in keys:
            seen[key] += 1
            # Refills are floats; a debt of 1e-9 token is rounding, not a reason to sleep.
            debt = seen[key] - before[key]
            delays.append(debt / self.rate if debt > 1e-9 else 0.0)
        return delays
