"""Concurrent requests as one statement: the mechanism behind the senders' batched claims and
group-committed ``sent`` (``shared/deliveries.py``), the gateway's grouped accepts
(``gateway/notifications/service.py``) and its outbox deletes after publishing
(``gateway/outbox/publisher.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Request = TypeVar("Request")
Outcome = TypeVar("Outcome")


class StatementBatcher(Generic[Request, Outcome]):
    """Runs concurrent requests as one statement: those made in the same turn of the event loop,
    or while the previous batch is in flight, go together in the next. One batch at a time, so
    under load batches grow instead of statements queueing for connections; when idle a request
    waits for nothing but its own round trip. ``run`` returns one outcome per request, in order;
    when it raises, every request of the batch raises the same error."""

    def __init__(self, run: Callable[[list[Request]], Awaitable[list[Outcome]]]) -> None:
        self._run = run
        self._waiting: list[tuple[Request, asyncio.Future[Outcome]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def submit(self, request: Request) -> Outcome:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, future))
        if self._draining is None:
            # Starts after the tasks already scheduled for this turn: a received batch's other
            # messages join before the statement goes out.
            self._draining = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    outcomes = await self._run([request for request, _ in batch])
                except Exception as exc:  # noqa: BLE001 - every caller gets it and decides
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if not future.done():  # its caller was cancelled meanwhile
                        future.set_result(outcome)
        finally:
            self._draining = None
