"""Accepting notifications and reporting their delivery.

``NotificationService`` is built once at start-up (``gateway/app.py``) with the database, the
outbox publisher it hands accepted notifications to and the template service whose parsed
versions it renders from. ``accept`` takes N notifications of one client and, for all of them at
once: reads their recipients (contacts and preferences) and templates' latest versions in one
statement, plans each item (``plan.py``: channels, skipped ones, rendered content, limits),
then stores every planned item in one statement. Each item gets its own outcome: an
``Acceptance`` (new, or the replay of an earlier request with the same Idempotency-Key and body)
or the ``ApiError`` it is refused with (unknown recipient or template, a channel the recipient or
template lacks, missing personalisation, a channel's limit, a key reused with another body).
POST /notifications is the N=1 case (``accept_one``): concurrent single accepts go to Postgres
together, as one such pair of statements (``shared/batching.py``), which costs the gateway and
Postgres much less per notification than statements of their own. POST /notifications/batch is
one ``accept`` of its valid items (``accept_batch``: each item validated on its own, the items
published on the bulk lane, the batch's Idempotency-Key derived per item).
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from prometheus_client import Counter
from pydantic import ValidationError

from gateway.auth import ClientIdentity, reads_everything
from gateway.content.rendering import CompiledTemplate
from gateway.errors import ApiError, BadRequestError, ConflictError, InternalError, NotFoundError, invalid_input
from gateway.notifications.plan import Plan, RecipientRecord, plan_notification
from gateway.notifications.repository import NewNotification, NotificationRepository, PlanInputs
from gateway.notifications.schemas import (
    MAX_BATCH_ITEMS,
    BatchItemResult,
    DeliveryMode,
    NotificationBatchItem,
    NotificationCreate,
    NotificationPublic,
)
from gateway.notifications.stored import StoredNotification
from gateway.outbox.publisher import OutboxPublisher, Publication
from gateway.templates.service import TemplateService
from shared.batching import StatementBatcher
from shared.channels import CONTACT_FIELDS
from shared.database import Database
from shared.logging import get_logger
from shared.messages import RecipientSnapshot
from shared.statuses import DeliveryStatus

# A delivery in one of these has been published: its notification can no longer be cancelled.
RELEASED_STATUSES = frozenset({DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.SENT, DeliveryStatus.FAILED})

log = get_logger(__name__)

ACCEPTED = Counter("gateway_notifications_accepted_total", "Notifications accepted (201), by client.", ["client"])


@dataclass(frozen=True, slots=True)
class AcceptRequest:
    """One notification a client asks to have accepted."""

    notification: NotificationCreate
    idempotency_key: str | None = None
    reference: str | None = None  # the client's own identifier (a batch item's)
    bulk: bool = False  # from a batch: the bulk lane (shared/topology.py)
    # What the key's first use is compared with; default: the notification's fingerprint.
    request_hash: str | None = None


@dataclass(frozen=True, slots=True)
class Acceptance:
    notification: StoredNotification
    replayed: bool  # True when an Idempotency-Key repeat returned the first response

    @property
    def id(self) -> uuid.UUID:
        return self.notification.id


AcceptOutcome = Acceptance | ApiError


@dataclass(frozen=True, slots=True)
class _Item:
    request: AcceptRequest
    client: ClientIdentity


class NotificationService:
    def __init__(
        self,
        *,
        database: Database,
        publisher: OutboxPublisher,
        outbox_grace_seconds: float,
        templates: TemplateService,
        critical_categories: Set[str] = frozenset(),
        repository: NotificationRepository | None = None,
        on_scheduled: Callable[[datetime], None] = lambda _release_at: None,
    ) -> None:
        self._database = database
        self._publisher = publisher
        self._outbox_grace_seconds = outbox_grace_seconds
        self._templates = templates
        self._critical_categories = frozenset(critical_categories)
        self._repository = repository or NotificationRepository()
        self._on_scheduled = on_scheduled
        self._single_accepts: StatementBatcher[_Item, AcceptOutcome] = StatementBatcher(self._store)

    async def accept_one(self, request: AcceptRequest, *, client: ClientIdentity) -> Acceptance:
        """Accept one notification (in one statement with those accepted at the same moment),
        or raise the error it was refused with."""
        outcome = await self._single_accepts.submit(_Item(request, client))
        if isinstance(outcome, ApiError):
            raise outcome
        return outcome

    async def accept(self, requests: Sequence[AcceptRequest], *, client: ClientIdentity) -> list[AcceptOutcome]:
        """Plan and store ``requests`` (two statements for all of them) and publish the new ones;
        one outcome per request, in order."""
        return await self._store([_Item(request, client) for request in requests])

    async def accept_batch(self, items: Sequence[Any], *, idempotency_key: str | None, client: ClientIdentity) -> BatchAcceptance:
        """POST /notifications/batch: each item validated and planned on its own; the valid ones
        stored together by one accept (one statement: one transaction), published on the bulk
        lane. An Idempotency-Key covers the batch (``batch_item_key``)."""
        batch_hash = _batch_hash(items) if idempotency_key is not None else None
        if idempotency_key is not None:
            await self._refuse_key_of_another_batch(idempotency_key, batch_hash, client=client)
        results: list[BatchItemResult | None] = []
        requests: list[tuple[int, AcceptRequest]] = []
        for index, document in enumerate(items):
            try:
                item = NotificationBatchItem.model_validate(document, from_attributes=True)
            except ValidationError as exc:
                refusal = invalid_input(exc, "body")
                results.append(BatchItemResult(index=index, status=refusal.status_code, message=refusal.message, field=refusal.field))
                continue
            results.append(None)
            key = batch_item_key(idempotency_key, index) if idempotency_key is not None else None
            requests.append(
                (index, AcceptRequest(item, idempotency_key=key, reference=item.reference, bulk=True, request_hash=batch_hash))
            )
        outcomes = await self.accept([request for _, request in requests], client=client) if requests else []
        replayed = False
        for (index, _), outcome in zip(requests, outcomes, strict=True):
            if isinstance(outcome, ApiError):
                results[index] = BatchItemResult(index=index, status=outcome.status_code, message=outcome.message, field=outcome.field)
            else:
                replayed = replayed or outcome.replayed
                results[index] = BatchItemResult(index=index, status=201, id=outcome.id, reference=outcome.notification.reference)
        return BatchAcceptance([result for result in results if result is not None], replayed=replayed)

    async def _refuse_key_of_another_batch(self, key: str, batch_hash: str | None, *, client: ClientIdentity) -> None:
        """409 when an item of an earlier batch with this key was stored from another body: a
        batch's key covers all of it, so a changed batch stores nothing rather than its new items."""
        async with self._database.connection() as connection:
            holders = await self._repository.by_idempotency_keys(
                connection, [(client.common_name, batch_item_key(key, index)) for index in range(MAX_BATCH_ITEMS)]
            )
        if any(holder["request_hash"] != batch_hash for holder in holders.values()):
            raise ConflictError("this Idempotency-Key was already used with a different batch; use a new key for a new batch")

    async def _store(self, items: list[_Item]) -> list[AcceptOutcome]:
        async with self._database.connection() as connection:
            inputs = await self._repository.plan_inputs(
                connection, [(item.request.notification.recipient, item.request.notification.template) for item in items]
            )
            planned = await self._planned(connection, items, inputs)
            new = [entry for entry in planned if isinstance(entry, NewNotification)]
            stored = await self._repository.accept(connection, new, outbox_grace_seconds=self._outbox_grace_seconds) if new else {}
            # Not stored, with a key: an earlier request with that key decides first (a replay
            # stays a replay after its recipient or template is gone).
            taken = [
                index
                for index, (item, entry) in enumerate(zip(items, planned, strict=True))
                if item.request.idempotency_key is not None and not (isinstance(entry, NewNotification) and entry.id in stored)
            ]
            holders: dict[int, Mapping[str, Any]] = {}
            if taken:
                found = await self._repository.by_idempotency_keys(
                    connection, [(items[index].client.common_name, items[index].request.idempotency_key or "") for index in taken]
                )
                holders = {index: found[position] for position, index in enumerate(taken, start=1) if position in found}
        outcomes = [
            self._outcome(item, entry, stored, holders.get(index)) for index, (item, entry) in enumerate(zip(items, planned, strict=True))
        ]
        # Counted per statement and client: a labelled child's look-up is a lock and a dict per call.
        accepted = collections.Counter(entry.client for entry in planned if isinstance(entry, NewNotification) and entry.id in stored)
        for client_name, count in accepted.items():
            ACCEPTED.labels(client_name).inc(count)
        return outcomes

    async def _planned(
        self, connection: asyncpg.Connection, items: list[_Item], inputs: list[PlanInputs]
    ) -> list[NewNotification | ApiError]:
        """Each item's plan as the notification to store, or the error it is refused with."""
        versions = {
            index: (item.request.notification.template, item.request.notification.template_version or found.template_latest)
            for index, (item, found) in enumerate(zip(items, inputs, strict=True))
            if item.request.notification.template is not None and found.template_latest is not None
        }
        compiled = await self._templates.compiled(connection, versions.values()) if versions else {}
        planned: list[NewNotification | ApiError] = []
        now = datetime.now(UTC)
        for index, (item, found) in enumerate(zip(items, inputs, strict=True)):
            notification = item.request.notification
            template = None
            try:
                if notification.template is not None:
                    template = compiled.get(versions[index]) if index in versions else None
                    if template is None:
                        raise _template_not_found(notification.template, notification.template_version, found.template_latest)
                plan = plan_notification(
                    notification, recipient=found.recipient, template=template, critical_categories=self._critical_categories, now=now
                )
            except ApiError as refusal:
                planned.append(refusal)
                continue
            assert found.recipient is not None  # planning refuses an unknown recipient
            planned.append(_new_notification(item, found.recipient, template, plan))
        return planned

    def _outcome(
        self, item: _Item, entry: NewNotification | ApiError, stored: Mapping[Any, Mapping[str, Any]], holder: Mapping[str, Any] | None
    ) -> AcceptOutcome:
        if isinstance(entry, NewNotification) and entry.id in stored:
            row = stored[entry.id]
            notification = _stored(entry, row["created_at"])
            if row["outbox_id"] is not None and entry.plan.release_at is None:
                self._publisher.submit(Publication(row["outbox_id"], notification.sns_message(entry.plan.published)))
            if entry.plan.release_at is not None:
                # The relay publishes it when it is due; tell this replica's relay when that is.
                self._on_scheduled(entry.plan.release_at)
            log.info("notification_accepted", notification_id=str(entry.id), client=entry.client, channels=notification.channels)
            return Acceptance(notification, replayed=False)
        if holder is not None:
            if holder["request_hash"] != _request_hash(item.request):
                return ConflictError(
                    "this Idempotency-Key was already used with a different request body; use a new key for a new notification"
                )
            return Acceptance(StoredNotification.from_row(holder), replayed=True)
        if isinstance(entry, ApiError):
            return entry
        # Planned and not stored, yet no notification holds its key: only a notification deleted
        # meanwhile could explain it, and nothing deletes them. The other items of the statement
        # are stored: this one alone is answered 500.
        log.error("notification_neither_stored_nor_refused", notification_id=str(entry.id), client=entry.client)
        return InternalError("internal error; it has been logged")

    async def status(self, connection: asyncpg.Connection, *, notification_id: uuid.UUID, reader: ClientIdentity) -> NotificationPublic:
        """The notification, when ``reader`` created it or has the role audit; another client's is
        answered exactly as an unknown id (its existence is not for others to learn)."""
        owner = None if reads_everything(reader) else reader.common_name
        row = await self._repository.status(connection, notification_id=notification_id, client=owner)
        if row is None:
            raise NotFoundError(f"no notification with id {notification_id}")
        return StoredNotification.from_row(row).public(published=row["published"], deliveries=row["deliveries"])

    async def cancel(self, connection: asyncpg.Connection, *, notification_id: uuid.UUID, client: ClientIdentity) -> NotificationPublic:
        """Cancel a notification of ``client`` while it is scheduled: its deliveries become
        ``cancelled`` and nothing is published; 409 once any is released, 404 for another
        client's or an unknown id. Cancelling a cancelled notification answers it again."""
        if await self._repository.status(connection, notification_id=notification_id, client=client.common_name) is None:
            raise NotFoundError(f"no notification with id {notification_id}")
        cancelled = await self._repository.cancel_scheduled(connection, notification_id=notification_id)
        notification = await self.status(connection, notification_id=notification_id, reader=client)
        statuses = {delivery.status for delivery in notification.deliveries.values()}
        if not cancelled and (DeliveryStatus.CANCELLED not in statuses or statuses & RELEASED_STATUSES):
            raise ConflictError("already released")
        if cancelled:
            log.info("notification_cancelled", notification_id=str(notification_id), client=client.common_name, deliveries=cancelled)
        return notification


@dataclass(frozen=True, slots=True)
class BatchAcceptance:
    results: list[BatchItemResult]  # one per item, in order
    replayed: bool  # some item was stored by an earlier request with the same Idempotency-Key


def batch_item_key(key: str, index: int) -> str:
    """The idempotency key of a batch's item ``index``: the batch's key and the index, apart by a
    space, which no client's key may hold (so it never meets a POST /notifications key).

    Per item rather than a stored answer for the batch: each stored item keeps the key index's
    guarantee a single POST has (never stored twice, even by two replicas racing), and a replay
    answers every item that was stored as before while the refused ones, of which nothing was
    stored, are judged again."""
    return f"{key} {index}"


def _batch_hash(items: Sequence[Any]) -> str:
    """What a batch asked for (its items as sent), independent of key order and formatting: the
    request hash of each of its items, so a replay with another batch is told apart."""
    return hashlib.sha256(json.dumps(list(items), sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _template_not_found(name: str, version: int | None, latest: int | None) -> BadRequestError:
    if version is not None and latest is not None:
        return BadRequestError(f"template {name} has no version {version}; its latest is {latest}", field="template_version")
    return BadRequestError(f"template not found: {name}", field="template")


def _new_notification(item: _Item, recipient: RecipientRecord, template: CompiledTemplate | None, plan: Plan) -> NewNotification:
    request, client = item.request, item.client
    notification = request.notification
    return NewNotification(
        id=uuid7(),
        recipient=recipient,
        message=notification.message,
        subject=notification.subject,
        content=plan.content_json,
        template=template.name if template is not None else None,
        template_version=template.version if template is not None else None,
        plan=plan,
        client=client.common_name,
        client_serial=client.serial,
        idempotency_key=request.idempotency_key,
        request_hash=_request_hash(request) if request.idempotency_key else None,
        reference=request.reference,
        bulk=request.bulk,
        send_at=notification.send_at,
        delivery=notification.delivery,
    )


def _stored(item: NewNotification, created_at: datetime) -> StoredNotification:
    """The notification the accept statement has just stored: the item, and when the database stored it."""
    recipient = item.recipient
    return StoredNotification(
        id=item.id,
        recipient=RecipientSnapshot(name=recipient.name, **{field: getattr(recipient, field) for field in CONTACT_FIELDS}),
        message=item.message,
        subject=item.subject,
        content=item.plan.content,
        template=item.template,
        template_version=item.template_version,
        category=item.plan.category,
        channels=[channel.value for channel in item.plan.channels],
        client=item.client,
        created_at=created_at,
        reference=item.reference,
        bulk=item.bulk,
        send_at=item.send_at,
        release_at=item.plan.release_at,
        delivery=item.delivery,
        sms=item.plan.sms,
    )


# Fields a request has had since templates (and send_at since scheduled sends); left out of its fingerprint when not given, so a
# request made before them keeps its hash (its Idempotency-Key's replays stay replays).
_FIELDS_SINCE_TEMPLATES = ("template", "template_version", "personalisation", "category", "send_at")


def _request_hash(request: AcceptRequest) -> str:
    return request.request_hash if request.request_hash is not None else fingerprint(request.notification)


def fingerprint(request: NotificationCreate) -> str:
    """A hash of what the request asks for, independent of key order and formatting."""
    unset = {field for field in _FIELDS_SINCE_TEMPLATES if getattr(request, field) is None}
    if request.delivery is DeliveryMode.ALL:
        unset.add("delivery")  # the default, as every request before it meant
    canonical: dict[str, Any] = request.model_dump(mode="json", exclude=unset)
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 version 7): new rows land at the end of the primary key index."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # variant
    return uuid.UUID(int=value)
