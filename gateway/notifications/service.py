"""Accepting notifications and reporting their delivery.

``NotificationService`` is built once at start-up (``gateway/app.py``) with the database and the
outbox publisher it hands accepted notifications to. ``accept`` stores N notifications of one
client in one statement; each item gets its own outcome: an ``Acceptance`` (new, or the replay of
an earlier request with the same Idempotency-Key and body) or the ``ApiError`` it is refused with
(unknown recipient, a requested channel the recipient lacks, a key reused with another body).
POST /notifications is the N=1 case (``accept_one``): concurrent single accepts go to Postgres
together, as one such statement (``shared/batching.py``), which costs the gateway and Postgres
much less per notification than a statement each.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from prometheus_client import Counter

from gateway.auth import ClientIdentity, reads_everything
from gateway.errors import ApiError, BadRequestError, ConflictError, InternalError, NotFoundError
from gateway.notifications.repository import NewNotification, NotificationRepository
from gateway.notifications.schemas import NotificationCreate, NotificationPublic
from gateway.notifications.stored import StoredNotification
from gateway.outbox.publisher import OutboxPublisher, Publication
from shared.batching import StatementBatcher
from shared.channels import CONTACT_FIELDS
from shared.database import Database
from shared.logging import get_logger
from shared.messages import RecipientSnapshot

log = get_logger(__name__)

ACCEPTED = Counter("gateway_notifications_accepted_total", "Notifications accepted (201), by client.", ["client"])


@dataclass(frozen=True, slots=True)
class AcceptRequest:
    """One notification a client asks to have accepted."""

    notification: NotificationCreate
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class Acceptance:
    notification: StoredNotification
    replayed: bool  # True when an Idempotency-Key repeat returned the first response

    @property
    def id(self) -> uuid.UUID:
        return self.notification.id


AcceptOutcome = Acceptance | ApiError


class NotificationService:
    def __init__(
        self,
        *,
        database: Database,
        publisher: OutboxPublisher,
        outbox_grace_seconds: float,
        repository: NotificationRepository | None = None,
    ) -> None:
        self._database = database
        self._publisher = publisher
        self._outbox_grace_seconds = outbox_grace_seconds
        self._repository = repository or NotificationRepository()
        self._single_accepts: StatementBatcher[NewNotification, AcceptOutcome] = StatementBatcher(self._store)

    async def accept_one(self, request: AcceptRequest, *, client: ClientIdentity) -> Acceptance:
        """Accept one notification (in one statement with those accepted at the same moment),
        or raise the error it was refused with."""
        outcome = await self._single_accepts.submit(_new_notification(request, client))
        if isinstance(outcome, ApiError):
            raise outcome
        return outcome

    async def accept(self, requests: Sequence[AcceptRequest], *, client: ClientIdentity) -> list[AcceptOutcome]:
        """Store ``requests`` in one statement and publish the new ones; one outcome per request, in order."""
        return await self._store([_new_notification(request, client) for request in requests])

    async def _store(self, items: list[NewNotification]) -> list[AcceptOutcome]:
        async with self._database.connection() as connection:
            rows = await self._repository.accept(connection, items, outbox_grace_seconds=self._outbox_grace_seconds)
            # Not stored, with a key: an earlier request with that key decides first (a replay
            # stays a replay after its recipient is gone), as the key's own check did.
            taken = [
                index for index, (item, row) in enumerate(zip(items, rows, strict=True))
                if row["outbox_id"] is None and item.idempotency_key is not None
            ]
            holders: dict[int, Mapping[str, Any]] = {}
            if taken:
                found = await self._repository.by_idempotency_keys(
                    connection, [(items[index].client, items[index].idempotency_key or "") for index in taken]
                )
                holders = {index: found[position] for position, index in enumerate(taken, start=1) if position in found}
        return [self._outcome(item, row, holders.get(index)) for index, (item, row) in enumerate(zip(items, rows, strict=True))]

    def _outcome(self, item: NewNotification, row: Mapping[str, Any], holder: Mapping[str, Any] | None) -> AcceptOutcome:
        if row["outbox_id"] is not None:
            stored = _stored(item, row)
            self._publisher.submit(Publication(row["outbox_id"], stored.sns_message()))
            ACCEPTED.labels(item.client).inc()
            log.info("notification_accepted", notification_id=str(stored.id), client=item.client, channels=stored.channels)
            return Acceptance(stored, replayed=False)
        if holder is not None:
            if holder["request_hash"] != item.request_hash:
                return ConflictError(
                    "this Idempotency-Key was already used with a different request body; use a new key for a new notification"
                )
            return Acceptance(StoredNotification.from_row(holder), replayed=True)
        if not row["known"]:
            return BadRequestError(f"unknown recipient: {item.recipient!r}", field="recipient")
        if not _storable(item, row):
            available = list(row["available"])
            missing = [channel for channel in item.requested or () if channel not in available]
            return BadRequestError(
                f"recipient {item.recipient!r} has no {', '.join(missing)} contact; its channels are: {', '.join(available)}",
                field="channels",
            )
        # Stored nothing, yet the recipient has the channels and no notification holds the key:
        # only a notification deleted meanwhile could explain it, and nothing deletes them. The
        # other items of the statement are stored: this one alone is answered 500.
        log.error("notification_neither_stored_nor_refused", notification_id=str(item.id), client=item.client)
        return InternalError("internal error; it has been logged")

    async def status(self, connection: asyncpg.Connection, *, notification_id: uuid.UUID, reader: ClientIdentity) -> NotificationPublic:
        """The notification, when ``reader`` created it or has the role audit; another client's is
        answered exactly as an unknown id (its existence is not for others to learn)."""
        owner = None if reads_everything(reader) else reader.common_name
        row = await self._repository.status(connection, notification_id=notification_id, client=owner)
        if row is None:
            raise NotFoundError(f"no notification with id {notification_id}")
        return StoredNotification.from_row(row).public(published=row["published"], deliveries=row["deliveries"])


def _new_notification(request: AcceptRequest, client: ClientIdentity) -> NewNotification:
    notification = request.notification
    return NewNotification(
        id=uuid7(),
        recipient=notification.recipient,
        message=notification.message,
        subject=notification.subject,
        requested=[channel.value for channel in notification.channels] if notification.channels else None,
        client=client.common_name,
        client_serial=client.serial,
        idempotency_key=request.idempotency_key,
        request_hash=fingerprint(notification) if request.idempotency_key else None,
    )


def _storable(item: NewNotification, row: Mapping[str, Any]) -> bool:
    """Whether the recipient is known and has every requested channel."""
    return bool(row["known"]) and (item.requested is None or set(item.requested) <= set(row["available"]))


def _stored(item: NewNotification, row: Mapping[str, Any]) -> StoredNotification:
    """The notification the accept statement has just stored: the item, and what the database added."""
    return StoredNotification(
        id=item.id,
        recipient=RecipientSnapshot(name=item.recipient, **{field: row[field] for field in CONTACT_FIELDS}),
        message=item.message,
        subject=item.subject,
        channels=list(row["channels"]),
        client=item.client,
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
