"""gateway/outbox/relay.py: how long the relay sleeps between passes and what wakes it (the passes
themselves are the integration tests', against Postgres and SNS)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from gateway.outbox.relay import OutboxRelay


class ScriptedRelay(OutboxRelay):
    """The relay's loop over passes that answer (claimed, next due in) from a script; records how
    long it asks to sleep after each, and stops when the script is done."""

    def __init__(self, passes: list[tuple[int, float | None]], *, poll_interval: float = 1.0, batch_size: int = 100) -> None:
        super().__init__(sns=None, database=None, poll_interval=poll_interval, batch_size=batch_size, max_backoff=1)  # type: ignore[arg-type]
        self.script = list(passes)
        self.sleeps: list[float] = []

    async def relay_once(self) -> tuple[int, float | None]:
        if not self.script:
            raise asyncio.CancelledError
        return self.script.pop(0)

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


async def sleeps_after(passes: list[tuple[int, float | None]], **options: float) -> list[float]:
    relay = ScriptedRelay(passes, **options)  # type: ignore[arg-type]
    with pytest.raises(asyncio.CancelledError):
        await relay.run()
    return relay.sleeps


class TestSleep:
    async def test_the_poll_interval_when_nothing_is_due_sooner(self) -> None:
        assert await sleeps_after([(0, None), (3, 5.0)], poll_interval=1.0) == [1.0, 1.0]

    async def test_until_the_next_row_is_due(self) -> None:
        assert await sleeps_after([(0, 0.25)], poll_interval=1.0) == [0.25]

    async def test_not_at_all_for_an_overdue_row(self) -> None:
        assert await sleeps_after([(0, -3.0)], poll_interval=1.0) == [0.0]

    async def test_not_at_all_after_a_full_batch(self) -> None:
        assert await sleeps_after([(100, 5.0), (2, None)], poll_interval=1.0, batch_size=100) == [1.0]


class TestExpect:
    """On the real event loop: a sleep of 30 s, cut short or not."""

    async def asleep(self) -> tuple[OutboxRelay, asyncio.Task[None]]:
        relay = OutboxRelay(sns=None, database=None, poll_interval=30, batch_size=1, max_backoff=1)  # type: ignore[arg-type]
        sleeping = asyncio.create_task(relay._sleep(30))
        await asyncio.sleep(0.01)
        return relay, sleeping

    async def test_a_notification_due_before_the_sleep_ends_wakes_it(self) -> None:
        relay, sleeping = await self.asleep()
        relay.expect(datetime.now(UTC) + timedelta(seconds=2))
        await asyncio.wait_for(sleeping, timeout=5)

    async def test_one_due_after_it_does_not(self) -> None:
        relay, sleeping = await self.asleep()
        relay.expect(datetime.now(UTC) + timedelta(minutes=5))
        await asyncio.sleep(0.2)
        assert not sleeping.done()
        sleeping.cancel()
