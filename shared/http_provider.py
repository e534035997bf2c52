"""A provider that is one HTTP API called with aiohttp (Slack's Web API, Twilio): one session, one
connection pool of the sender's concurrency, every request bounded by the send timeout."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from shared.providers import Provider
from shared.sender_settings import SenderSettings


class HttpProvider(Provider):
    def __init__(self, settings: SenderSettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "open() first"
        return self._session

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._settings.send_timeout_seconds),
            connector=aiohttp.TCPConnector(limit=self._settings.concurrency),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def json_object(raw: bytes) -> dict[str, Any] | None:
    """A response body as a JSON object; None for anything else (an HTML error page, an empty
    body: not the API answering)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
