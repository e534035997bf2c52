"""Provider receipts: what SES and SNS report after a send, applied to the delivery it is about.

A receipt names the provider's message id (``deliveries.provider_message_id``, written with
``sent``) and says what became of the message. ``ReceiptRepository.apply`` records it and acts on
it in one statement:

- it is stored in ``receipts`` once: (channel, provider event id) is unique, so a receipt read
  twice (SQS delivers at least once, the SMS log window overlaps) is a duplicate and does nothing;
- ``DELIVERED`` turns a ``sent`` delivery ``delivered`` (``delivered_at``: when the provider says);
  ``FAILED`` turns it ``failed`` with the reason in ``last_error``; ``RECORDED`` changes nothing.
  Only a ``sent`` delivery moves: status never goes backwards, so a late Delivery does not undo
  ``failed`` and a late Bounce does not undo ``delivered`` (both are still recorded);
- ``suppress``: the delivery's address (the notification's snapshot of it, the address the
  provider was given) joins the suppression list, unless it is on it already.

A receipt whose message id no delivery has is ``UNKNOWN``: the ``sent`` write may not be
committed yet (the provider can answer faster than our group commit), so the caller tries it
again for a while (``UNKNOWN_RECEIPT_RETRY_SECONDS``, five minutes) and then counts and drops it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.channels import CHANNELS, Channel
from shared.database import Database

# How long a receipt for a message id no delivery has yet is tried again before it is dropped
# (the default of the senders' ``*_RECEIPTS_UNKNOWN_RETRY_SECONDS``), and the longest wait between
# two tries, so that the window holds several.
UNKNOWN_RECEIPT_RETRY_SECONDS = 300.0
UNKNOWN_RECEIPT_MAX_BACKOFF_SECONDS = 60.0


class ReceiptEffect(StrEnum):
    DELIVERED = "delivered"
    FAILED = "failed"
    RECORDED = "recorded"  # kept, status unchanged (a transient bounce)


class ReceiptOutcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    UNKNOWN = "unknown"  # no delivery has the message id (yet)


@dataclass(frozen=True, slots=True)
class Receipt:
    channel: Channel
    provider_message_id: str
    provider_event_id: str  # the provider's id of the event, for deduplication
    event: str  # Delivery, Bounce, Complaint, Reject, Rendering Failure; SUCCESS, FAILURE
    at: datetime
    effect: ReceiptEffect
    type: str | None = None
    subtype: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None  # last_error, when it fails the delivery
    suppress: str | None = None  # the suppression's reason, when it suppresses the address


# $1 channel, $2 provider message id, $3..$8 the receipt (event, type, subtype, at, detail,
# provider event id), $9 the status it moves a sent delivery to (NULL: none), $10 last_error,
# $11 the suppression's reason (NULL: none). The address is the snapshot's contact column of the
# channel (CHANNELS), chosen by a CASE so that one statement serves every channel.
_APPLY = f"""
    WITH delivery AS (
        SELECT d.notification_id,
               CASE $1::text {" ".join(f"WHEN '{spec.channel.value}' THEN n.{spec.contact_field}" for spec in CHANNELS)} END AS address
        FROM deliveries AS d JOIN notifications AS n ON n.id = d.notification_id
        WHERE d.provider_message_id = $2 AND d.channel = $1
        LIMIT 1
    ),
    recorded AS (
        INSERT INTO receipts (notification_id, channel, event, type, subtype, at, detail, provider_event_id)
        SELECT notification_id, $1, $3, $4, $5, $6, $7::jsonb, $8 FROM delivery
        ON CONFLICT (channel, provider_event_id) DO NOTHING
        RETURNING notification_id
    ),
    moved AS (
        UPDATE deliveries AS d
        SET status = $9, last_error = CASE WHEN $9 = 'failed' THEN $10 ELSE d.last_error END,
            delivered_at = CASE WHEN $9 = 'delivered' THEN $6 ELSE d.delivered_at END, updated_at = now()
        FROM recorded AS r
        WHERE $9::text IS NOT NULL AND d.notification_id = r.notification_id AND d.channel = $1 AND d.status = 'sent'
        RETURNING d.notification_id
    ),
    suppressed AS (
        INSERT INTO suppressions (channel, address, reason, notification_id)
        SELECT $1, delivery.address, $11, delivery.notification_id FROM delivery JOIN recorded USING (notification_id)
        WHERE $11::text IS NOT NULL AND delivery.address IS NOT NULL
        ON CONFLICT (channel, address) DO NOTHING
        RETURNING address
    )
    SELECT EXISTS (SELECT 1 FROM delivery) AS known, EXISTS (SELECT 1 FROM recorded) AS recorded
"""


class ReceiptRepository:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def apply(self, receipt: Receipt) -> ReceiptOutcome:
        """Record ``receipt`` and act on it (see the module docstring), in one autocommit statement."""
        status = None if receipt.effect is ReceiptEffect.RECORDED else receipt.effect.value
        async with self._database.connection() as connection:
            row = await connection.fetchrow(
                _APPLY,
                receipt.channel.value,
                receipt.provider_message_id,
                receipt.event,
                receipt.type,
                receipt.subtype,
                receipt.at,
                json.dumps(receipt.detail),
                receipt.provider_event_id,
                status,
                receipt.reason,
                receipt.suppress,
            )
        if not row["known"]:
            return ReceiptOutcome.UNKNOWN
        return ReceiptOutcome.APPLIED if row["recorded"] else ReceiptOutcome.DUPLICATE
