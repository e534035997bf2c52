"""Per-client rate limits: one token bucket per client certificate (CN), shared by every replica.

Where the buckets live
----------------------
In Postgres, in the small UNLOGGED table ``rate_limit_buckets`` (one row per client), not in
Redis:

- Postgres is always there: every replica already depends on it, and the embedded local stack
  has no Redis. A Redis would be one more service to run, secure and monitor, and one more way
  for the gateway to be down, for a single feature.
- One statement does the whole bucket atomically (``INSERT ... ON CONFLICT DO UPDATE ...
  RETURNING``): the row lock serialises concurrent requests of one client across replicas, and
  the database's clock is the only clock, so replicas' clocks cannot disagree.
- UNLOGGED and a fillfactor of 70 keep the write cheap: no WAL, and updates stay HOT (no index
  change). Losing the table in a crash only refills every bucket.

What it costs
-------------
One more round trip per request, on the connection the route already holds (FastAPI caches the
``Connection`` dependency per request; POST /notifications takes the token on the connection it
accepts on). Measured on the 2-CPU development machine (local Postgres 15, asyncpg, 3,000
statements in a row): 0.44 ms median and about 2 ms p99 per statement, against 0.30 ms for a
bare ``SELECT 1``: the cost is the round trip, not the work.
``tests/integration/test_rate_limit.py`` prints the figure on each run. That is why it is off by
default (``GATEWAY_RATE_LIMIT_ENABLED``); batching tokens per replica would save the round trip
but let a client exceed its limit by the batch size on every replica. Off, the routes' dependency
is not installed at all and the accept does not call it (gateway/app.py).

A client over its limit costs the database almost nothing: each replica keeps a *shadow* of
every bucket it has seen (the tokens the database last returned, refilled locally). Other
replicas only ever take tokens out, so the real bucket never holds more than the shadow: when
the shadow is empty the request is refused without asking the database. An over-limit client
therefore costs at most about ``rate`` statements per second per replica, whatever it sends.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from prometheus_client import Counter

from gateway.auth import ClientIdentity, client_identity
from gateway.deps import Connection
from gateway.errors import TooManyRequestsError
from gateway.settings import GatewaySettings, RateLimit

Clock = Callable[[], float]

RATE_LIMITED = Counter("gateway_rate_limited_total", "Requests refused with 429 (over the client's rate limit), by client.", ["client"])

# Refill, take a token when there is one, and say whether there was: one atomic statement.
# $1 client, $2 rate (tokens per second), $3 burst.
TAKE_TOKEN = """
    INSERT INTO rate_limit_buckets AS b (client, tokens, updated_at, allowed)
    VALUES ($1::text, $3::float8 - 1, clock_timestamp(), true)
    ON CONFLICT (client) DO UPDATE SET (tokens, updated_at, allowed) = (
        SELECT CASE WHEN r.refilled >= 1 THEN r.refilled - 1 ELSE r.refilled END, r.at, r.refilled >= 1
        FROM (
            SELECT LEAST($3::float8, b.tokens + GREATEST(0, extract(epoch FROM t.at - b.updated_at)) * $2::float8) AS refilled,
                   t.at
            FROM (SELECT clock_timestamp() AS at) AS t
        ) AS r
    )
    RETURNING allowed, tokens
"""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after_seconds: int = 0  # whole seconds, as the Retry-After header wants them


class _Shadow:
    """This replica's upper bound of a client's bucket (see the module docstring)."""

    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens, self.updated = tokens, now

    def refilled(self, limit: RateLimit, now: float) -> float:
        return min(float(limit.burst), self.tokens + (now - self.updated) * limit.rate)


class ClientRateLimiter:
    def __init__(self, settings: GatewaySettings, *, clock: Clock = time.monotonic) -> None:
        self._settings = settings
        self._clock = clock
        self._shadows: dict[str, _Shadow] = {}

    def limit_for(self, client: str) -> RateLimit:
        return self._settings.rate_limit_for(client)

    async def take(self, connection: asyncpg.Connection, *, client: str) -> Decision:
        """Take one token from ``client``'s bucket, or say how long until there is one."""
        limit = self.limit_for(client)
        shadow = self._shadows.get(client)
        if shadow is not None:
            tokens = shadow.refilled(limit, self._clock())
            if tokens < 1:
                return Decision(allowed=False, retry_after_seconds=_retry_after(tokens, limit))
        allowed, tokens = await connection.fetchrow(TAKE_TOKEN, client, limit.rate, float(limit.burst))
        allowed, tokens = bool(allowed), float(tokens)
        self._shadows[client] = _Shadow(tokens, self._clock())
        if allowed:
            return Decision(allowed=True)
        return Decision(allowed=False, retry_after_seconds=_retry_after(tokens, limit))

    async def enforce(self, connection: asyncpg.Connection, *, client: str) -> None:
        """Take a token for ``client``, or refuse the request: 429 with Retry-After."""
        decision = await self.take(connection, client=client)
        if not decision.allowed:
            RATE_LIMITED.labels(client).inc()
            limit = self.limit_for(client)
            raise TooManyRequestsError(
                f"rate limit exceeded for client {client!r}: {limit.rate:g} requests per second "
                f"with bursts of {limit.burst}; retry in {decision.retry_after_seconds} s",
                headers={"Retry-After": str(decision.retry_after_seconds)},
            )


def _retry_after(tokens: float, limit: RateLimit) -> int:
    return max(1, math.ceil((1 - tokens) / limit.rate))


async def enforce_rate_limit(
    request: Request,
    identity: Annotated[ClientIdentity, Depends(client_identity)],
    connection: Connection,
) -> None:
    """Router dependency: 429 with Retry-After when the calling client is over its limit."""
    limiter: ClientRateLimiter | None = request.app.state.rate_limiter
    if limiter is not None:
        await limiter.enforce(connection, client=identity.common_name)


RateLimited = Depends(enforce_rate_limit)
