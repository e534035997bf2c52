"""Setting, reading, removing a client's callback, and rotating its secret."""

from __future__ import annotations

import base64
import secrets

import asyncpg

from gateway.callbacks.repository import CallbackRepository
from gateway.callbacks.schemas import CallbackCreated, CallbackPublic, CallbackUpdate
from gateway.errors import BadRequestError, NotFoundError
from shared.callback_targets import TargetPolicy, TargetRefused

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # Standard Webhooks: between 24 and 64 bytes


def new_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and the base64 of random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


class CallbackService:
    def __init__(self, *, policy: TargetPolicy, rotation_grace_seconds: float, repository: CallbackRepository | None = None) -> None:
        self._policy = policy
        self._rotation_grace_seconds = rotation_grace_seconds
        self._repository = repository or CallbackRepository()

    async def put(self, connection: asyncpg.Connection, *, client: str, callback: CallbackUpdate) -> CallbackCreated:
        try:
            await self._policy.check(callback.url)
        except TargetRefused as exc:
            raise BadRequestError(str(exc), field="url") from None
        row = await self._repository.upsert(connection, client=client, url=callback.url, events=callback.event_names, secret=new_secret())
        return CallbackCreated(url=row["url"], events=row["events"], secret=row["secret"])

    async def get(self, connection: asyncpg.Connection, *, client: str) -> CallbackPublic:
        row = await self._repository.get(connection, client=client)
        if row is None:
            raise NotFoundError(_no_callback(client))
        return CallbackPublic(**row)

    async def delete(self, connection: asyncpg.Connection, *, client: str) -> None:
        await self._repository.delete(connection, client=client)

    async def rotate_secret(self, connection: asyncpg.Connection, *, client: str) -> CallbackCreated:
        row = await self._repository.rotate(connection, client=client, secret=new_secret(), grace_seconds=self._rotation_grace_seconds)
        if row is None:
            raise NotFoundError(_no_callback(client))
        return CallbackCreated(url=row["url"], events=row["events"], secret=row["secret"])


def _no_callback(client: str) -> str:
    return f"no callback is set for the client {client!r}; set one with PUT /callbacks"
