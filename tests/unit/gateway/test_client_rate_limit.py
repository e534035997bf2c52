"""gateway/client_rate_limit.py: the rate limiter's local shadow, and per-client limits."""

from __future__ import annotations

from typing import Any

from gateway.client_rate_limit import ClientRateLimiter
from gateway.settings import GatewaySettings


class FakeConnection:
    def __init__(self, rows: list[tuple[bool, float]]) -> None:
        self.rows = rows
        self.statements = 0

    async def fetchrow(self, _statement: str, *_params: Any) -> tuple[bool, float]:
        self.statements += 1
        return self.rows.pop(0)


class TestRateLimiterShadow:
    def settings(self) -> GatewaySettings:
        return GatewaySettings(rate_limit_enabled=True, rate_limit_overrides={"acme": {"rate": 2, "burst": 4}})

    async def test_an_empty_shadow_refuses_without_asking_the_database(self) -> None:
        now = [100.0]
        limiter = ClientRateLimiter(self.settings(), clock=lambda: now[0])
        connection = FakeConnection([(True, 0.0), (True, 0.0)])
        assert (await limiter.take(connection, client="acme")).allowed  # type: ignore[arg-type]
        refused = await limiter.take(connection, client="acme")  # type: ignore[arg-type]
        assert (refused.allowed, refused.retry_after_seconds, connection.statements) == (False, 1, 1)
        now[0] += 0.5  # one token earned: ask the database again
        assert (await limiter.take(connection, client="acme")).allowed  # type: ignore[arg-type]
        assert connection.statements == 2

    async def test_the_database_decides_when_the_shadow_has_tokens(self) -> None:
        limiter = ClientRateLimiter(self.settings(), clock=lambda: 0.0)
        connection = FakeConnection([(False, 0.25)])
        refused = await limiter.take(connection, client="acme")  # type: ignore[arg-type]
        assert (refused.allowed, refused.retry_after_seconds) == (False, 1)

    def test_overrides_and_defaults(self) -> None:
        settings = self.settings()
        assert (settings.rate_limit_for("acme").rate, settings.rate_limit_for("acme").burst) == (2, 4)
        assert (settings.rate_limit_for("other").rate, settings.rate_limit_for("other").burst) == (50, 100)
