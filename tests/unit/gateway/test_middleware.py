"""GatewayMiddleware's shedding: beyond max_in_flight requests in progress, a 503 at once, the body unread."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gateway.middleware import GatewayMiddleware



class BlockingApp:
    """Answers 201 once ``release`` is set; counts the requests that reached it."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.reached = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.reached += 1
        await receive()
        await self.release.wait()
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


async def call(middleware: GatewayMiddleware) -> tuple[list[dict[str, Any]], int]:
    """One POST through the middleware: the messages it sent and how often it read the body."""
    sent: list[dict[str, Any]] = []
    reads = 0

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b'{"recipient": "ada", "message": "hi"}', "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/notifications", "headers": [(b"content-length", b"37")]}
    await middleware(scope, receive, send)
    return sent, reads


async def test_requests_beyond_the_limit_get_503_with_retry_after_without_their_body_being_read() -> None:
    app = BlockingApp()
    middleware = GatewayMiddleware(app, max_body_bytes=65_536, max_in_flight=2)
    held = [asyncio.create_task(call(middleware)) for _ in range(2)]
    while app.reached < 2:
        await asyncio.sleep(0)

    sent, reads = await asyncio.wait_for(call(middleware), timeout=1)

    assert sent[0]["status"] == 503
    headers = dict(sent[0]["headers"])
    assert headers[b"retry-after"] == b"1"
    assert json.loads(sent[1]["body"])["message"] == "the gateway is at capacity; nothing was stored, retry shortly"
    assert reads == 0
    assert app.reached == 2

    app.release.set()
    for task in held:
        held_sent, _ = await task
        assert held_sent[0]["status"] == 201
    # Room again once the requests in progress ended.
    sent, reads = await asyncio.wait_for(call(middleware), timeout=1)
    assert sent[0]["status"] == 201
    assert reads == 1
