"""SharedRateLimiter's arithmetic: each reservation's wait from what the shared bucket held, and the
process's own bucket while Postgres cannot be reached (a fake database; the real one is in
tests/integration/shared/test_consumer.py's TestSharedRateLimit)."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any

import pytest

from shared.provider_rate_limit import SharedRateLimiter


class FakeDatabase:
    """Answers the reservation statement from ``left`` (tokens per key after it), or fails."""

    def __init__(self, left: dict[str, float] | None = None, error: Exception | None = None) -> None:
        self.left, self.error = left or {}, error
        self.statements: list[tuple[list[str], list[int]]] = []

    @asynccontextmanager
    async def connection(self) -> Any:
        yield self

    async def fetch(self, _query: str, keys: list[str], taken: list[int], _rate: float, _burst: float) -> list[dict[str, Any]]:
        if self.error is not None:
            raise self.error
        self.statements.append((keys, taken))
        return [{"key": key, "tokens": self.left[key]} for key in keys]


class TestReserve:
    def test_the_waits_of_one_statements_reservations(self) -> None:
        # 5 taken from a bucket that then holds -2.5: it held 2.5, so the 3rd waits 0.5 token's time.
        database = FakeDatabase({"sms": -2.5, "email": 3.0})
        limiter = SharedRateLimiter(database, rate=10.0, burst=10)  # type: ignore[arg-type]
        delays = asyncio.run(limiter._reserve(["sms", "email", "sms", "sms", "sms", "sms"]))
        assert database.statements == [(["sms", "email"], [5, 1])]
        assert delays == [0.0, 0.0, 0.0, pytest.approx(0.05), pytest.approx(0.15), pytest.approx(0.25)]

    def test_concurrent_acquires_go_as_one_statement(self) -> None:
        database = FakeDatabase({"sms": 10.0})
        limiter = SharedRateLimiter(database, rate=10.0, burst=20)  # type: ignore[arg-type]

        async def main() -> None:
            await asyncio.gather(*(limiter.acquire("sms") for _ in range(8)))

        asyncio.run(main())
        assert database.statements == [(["sms"], [8])]

    def test_an_unreachable_database_falls_back_to_the_processs_bucket(self) -> None:
        limiter = SharedRateLimiter(FakeDatabase(error=ConnectionRefusedError("down")), rate=1.0, burst=2)  # type: ignore[arg-type]
        asyncio.run(limiter.acquire("sms"))
        assert limiter._fallback.bucket("sms").reserve() == 0.0  # the second of its burst of 2
        assert limiter._fallback.bucket("sms").reserve() > 0.9

    def test_other_errors_are_not_hidden(self) -> None:
        limiter = SharedRateLimiter(FakeDatabase(error=ValueError("a bad query")), rate=1.0, burst=2)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="a bad query"):
            asyncio.run(limiter.acquire("sms"))
