"""Accepting notifications and reporting their delivery."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.auth import ClientIdentity
from gateway.errors import BadRequestError, ConflictError, NotFoundError
from gateway.notifications.repository import NotificationRepository, message_from_row
from gateway.notifications.schemas import NotificationAccepted, NotificationCreate, NotificationPublic, accepted_json
from gateway.publisher import NotificationPublisher
from shared.logging import get_logger

log = get_logger(__name__)

ACCEPTED = Counter("gateway_notifications_accepted_total", "Notifications accepted (201), by client.", ["client"])


@dataclass(frozen=True, slots=True)
class Acceptance:
    id: uuid.UUID
    body: bytes  # the 201's JSON body, a NotificationAccepted
    replayed: bool  # True when an Idempotency-Key repeat returned the first response


class NotificationService:
    def __init__(self, repository: NotificationRepository | None = None) -> None:
        self._repository = repository or NotificationRepository()

    async def accept(
        self,
        connection: asyncpg.Connection,
        *,
        request: NotificationCreate,
        client: ClientIdentity,
        idempotency_key: str | None,
        publisher: NotificationPublisher,
        outbox_grace_seconds: float,
    ) -> Acceptance:
        request_hash = fingerprint(request) if idempotency_key else None
        row = await self._repository.accept(
            connection,
            id=uuid7(),
            recipient=request.recipient,
            message=request.message,
            subject=request.subject,
            requested=[channel.value for channel in request.channels] if request.channels else None,
            client=client.common_name,
            client_serial=client.serial,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            grace_seconds=outbox_grace_seconds,
        )
        if row is not None:
            publisher.submit(message_from_row(row))
            ACCEPTED.labels(client.common_name).inc()
            log.info("notification_accepted", notification_id=str(row["id"]), client=client.common_name, channels=row["channels"])
            return Acceptance(row["id"], accepted_json(row), replayed=False)
        return await self._explain_refusal(connection, request=request, client=client, key=idempotency_key, request_hash=request_hash)

    async def _explain_refusal(
        self, connection: asyncpg.Connection, *, request: NotificationCreate, client: ClientIdentity, key: str | None, request_hash: str | None
    ) -> Acceptance:
        if key is not None:
            earlier = await self._repository.by_idempotency_key(connection, client=client.common_name, idempotency_key=key)
            if earlier is not None:
                if earlier["request_hash"] != request_hash:
                    raise ConflictError(
                        "this Idempotency-Key was already used with a different request body; use a new key for a new notification"
                    )
                return Acceptance(earlier["id"], accepted_json(earlier), replayed=True)
        available = await self._repository.recipient_channels(connection, recipient=request.recipient)
        if available is None:
            raise BadRequestError(f"unknown recipient: {request.recipient!r}", field="recipient")
        missing = [channel.value for channel in request.channels or () if channel.value not in available]
        raise BadRequestError(
            f"recipient {request.recipient!r} has no {', '.join(missing)} contact; its channels are: {', '.join(available)}",
            field="channels",
        )

    async def status(self, connection: AsyncConnection, *, notification_id: uuid.UUID) -> NotificationPublic:
        row = await self._repository.status(connection, notification_id=notification_id)
        if row is None:
            raise NotFoundError(f"no notification with id {notification_id}")
        return NotificationPublic(**_accepted(row).model_dump(), client=row["client"], published=row["published"], deliveries=row["deliveries"])


def _accepted(row: Mapping[str, Any]) -> NotificationAccepted:
    return NotificationAccepted(
        id=row["id"],
        recipient=row["recipient"],
        message=row["message"],
        subject=row["subject"],
        channels=row["channels"],
        created_at=row["created_at"],
    )


def fingerprint(request: NotificationCreate) -> str:
    """A hash of what the request asks for, independent of key order and formatting."""
    canonical: dict[str, Any] = request.model_dump(mode="json")
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 version 7): new rows land at the end of the primary key index."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # variant
    return uuid.UUID(int=value)


notification_service = NotificationService()
