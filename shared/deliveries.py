"""The ``deliveries`` rows the senders claim and settle: the guard against double sends.

Before calling a provider a sender *claims* the (notification, channel) delivery with one
conditional UPDATE: only a ``pending`` row, or a ``sending`` row whose claim has expired (its
replica died mid-send), becomes ``sending`` under the new claim. Postgres row locking makes the
UPDATE atomic, so of two replicas holding copies of the same message exactly one wins; the
other learns the row's state and acts on it (see ``shared/consumer.py``).

A claim is a lease (``claimed_until``): the sender's heartbeat extends it while a send runs,
and every settling UPDATE is conditional on still holding it, so a replica whose lease was
taken over never overwrites the new owner's outcome (except ``sent``: a send that happened is
recorded whatever else is going on).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, extract, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.tables import DeliveryStatus, deliveries
from shared.topology import Channel


@dataclass(frozen=True)
class Claim:
    """The outcome of ``claim``: ``claimed`` or, when not, the row's state (``status`` None when
    there is no such delivery)."""

    claimed: bool
    status: DeliveryStatus | None
    attempts: int = 0
    claimed_by: str | None = None
    claim_remaining_seconds: float = 0.0


class DeliveryRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def claim(
        self, *, notification_id: uuid.UUID, channel: Channel, claimed_by: str, lease_seconds: float
    ) -> Claim:
        claimable = or_(
            deliveries.c.status == DeliveryStatus.PENDING.value,
            and_(
                deliveries.c.status == DeliveryStatus.SENDING.value,
                or_(deliveries.c.claimed_until.is_(None), deliveries.c.claimed_until < func.now()),
            ),
        )
        statement = (
            update(deliveries)
            .where(_key(notification_id, channel), claimable)
            .values(
                status=DeliveryStatus.SENDING.value,
                attempts=deliveries.c.attempts + 1,
                claimed_by=claimed_by,
                claimed_until=func.now() + timedelta(seconds=lease_seconds),
                updated_at=func.now(),
            )
            .returning(deliveries.c.attempts)
        )
        async with self._engine.begin() as connection:
            attempts = (await connection.execute(statement)).scalar_one_or_none()
            if attempts is not None:
                return Claim(claimed=True, status=DeliveryStatus.SENDING, attempts=attempts, claimed_by=claimed_by)
            row = (
                await connection.execute(
                    select(
                        deliveries.c.status,
                        deliveries.c.attempts,
                        deliveries.c.claimed_by,
                        # clock_timestamp(), not now(): this transaction may have started
                        # before it waited for the winner's row lock.
                        func.greatest(extract("epoch", deliveries.c.claimed_until - func.clock_timestamp()), 0),
                    ).where(_key(notification_id, channel))
                )
            ).one_or_none()
        if row is None:
            return Claim(claimed=False, status=None)
        return Claim(
            claimed=False,
            status=DeliveryStatus(row[0]),
            attempts=row[1],
            claimed_by=row[2],
            claim_remaining_seconds=float(row[3] or 0.0),
        )

    async def mark_sent(
        self, *, notification_id: uuid.UUID, channel: Channel, provider_message_id: str | None
    ) -> None:
        statement = (
            update(deliveries)
            .where(_key(notification_id, channel))
            .values(
                status=DeliveryStatus.SENT.value,
                provider_message_id=provider_message_id,
                sent_at=func.now(),
                last_error=None,
                claimed_by=None,
                claimed_until=None,
                updated_at=func.now(),
            )
        )
        async with self._engine.begin() as connection:
            await connection.execute(statement)

    async def mark_failed(self, *, notification_id: uuid.UUID, channel: Channel, claimed_by: str, reason: str) -> bool:
        """Record a final failure; False when the claim was no longer ours (nothing changed)."""
        return await self._settle(
            notification_id=notification_id,
            channel=channel,
            claimed_by=claimed_by,
            status=DeliveryStatus.FAILED,
            reason=reason,
        )

    async def release(self, *, notification_id: uuid.UUID, channel: Channel, claimed_by: str, reason: str) -> bool:
        """Give a claim back after a transient failure: ``pending`` again, with the reason."""
        return await self._settle(
            notification_id=notification_id,
            channel=channel,
            claimed_by=claimed_by,
            status=DeliveryStatus.PENDING,
            reason=reason,
        )

    async def extend_claims(
        self,
        *,
        notification_ids: Sequence[uuid.UUID],
        channel: Channel,
        claimed_by: str,
        lease_seconds: float,
    ) -> int:
        """The heartbeat: push the leases of the given deliveries this replica still holds."""
        if not notification_ids:
            return 0
        statement = (
            update(deliveries)
            .where(
                deliveries.c.notification_id.in_(list(notification_ids)),
                deliveries.c.channel == channel.value,
                deliveries.c.status == DeliveryStatus.SENDING.value,
                deliveries.c.claimed_by == claimed_by,
            )
            .values(claimed_until=func.now() + timedelta(seconds=lease_seconds))
        )
        async with self._engine.begin() as connection:
            return (await connection.execute(statement)).rowcount

    async def _settle(
        self,
        *,
        notification_id: uuid.UUID,
        channel: Channel,
        claimed_by: str,
        status: DeliveryStatus,
        reason: str,
    ) -> bool:
        statement = (
            update(deliveries)
            .where(
                _key(notification_id, channel),
                deliveries.c.status == DeliveryStatus.SENDING.value,
                deliveries.c.claimed_by == claimed_by,
            )
            .values(status=status.value, last_error=reason, claimed_by=None, claimed_until=None, updated_at=func.now())
        )
        async with self._engine.begin() as connection:
            return (await connection.execute(statement)).rowcount == 1


def _key(notification_id: uuid.UUID, channel: Channel):  # noqa: ANN202 - a SQLAlchemy clause
    return and_(deliveries.c.notification_id == notification_id, deliveries.c.channel == channel.value)
