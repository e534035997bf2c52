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

Claims and ``sent`` are the hot path (one of each per message), so they are *batched*: the
claims a process makes while its previous claim statement is in flight (a received batch of
messages all ask in the same turn of the event loop) go to Postgres as one UPDATE ... RETURNING;
likewise ``sent`` records are group-committed in one UPDATE. Each caller still waits for its own
row's outcome, so a message is deleted from SQS only once its ``sent`` is committed. Every
statement is a single autocommit statement through ``shared/database.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from shared.batching import StatementBatcher
from shared.channels import Channel
from shared.database import Database
from shared.statuses import DeliveryStatus

# Rows are locked in notification_id order (the subquery's ORDER BY ... FOR UPDATE), so two
# replicas claiming overlapping batches (copies of the same messages) wait for each other
# instead of deadlocking. A row is claimable when pending, or sending under an expired lease.
_CLAIM = """
    UPDATE deliveries AS d
    SET status = 'sending', attempts = d.attempts + 1, claimed_by = $3,
        claimed_until = now() + make_interval(secs => $4::float8), updated_at = now()
    WHERE d.channel = $2
      AND d.notification_id IN (
          SELECT notification_id FROM deliveries
          WHERE notification_id = ANY($1::uuid[]) AND channel = $2
          ORDER BY notification_id
          FOR UPDATE
      )
      AND (d.status = 'pending' OR (d.status = 'sending' AND (d.claimed_until IS NULL OR d.claimed_until < now())))
    RETURNING d.notification_id, d.attempts
"""

# The state of rows a claim did not take. A statement of its own, after the UPDATE: it sees
# what the winner committed while the UPDATE waited for its row lock (the UPDATE's own snapshot
# predates that). clock_timestamp(), not now(), for the same reason.
_CLAIM_STATES = """
    SELECT notification_id, status, attempts, claimed_by,
           greatest(extract(epoch FROM claimed_until - clock_timestamp()), 0)::float8 AS remaining
    FROM deliveries
    WHERE notification_id = ANY($1::uuid[]) AND channel = $2
"""

_MARK_SENT = """
    UPDATE deliveries AS d
    SET status = 'sent', provider_message_id = s.provider_message_id, provider = s.provider, sent_at = now(),
        last_error = NULL, claimed_by = NULL, claimed_until = NULL, updated_at = now()
    FROM unnest($1::uuid[], $2::text[], $4::text[]) AS s(notification_id, provider_message_id, provider)
    WHERE d.notification_id = s.notification_id AND d.channel = $3
"""

_SETTLE = """
    UPDATE deliveries
    SET status = $4, last_error = $5, provider = coalesce($6, provider), claimed_by = NULL, claimed_until = NULL,
        updated_at = now()
    WHERE notification_id = $1 AND channel = $2 AND status = 'sending' AND claimed_by = $3
"""

_EXTEND_CLAIMS = """
    UPDATE deliveries SET claimed_until = now() + make_interval(secs => $4::float8)
    WHERE notification_id = ANY($1::uuid[]) AND channel = $2 AND status = 'sending' AND claimed_by = $3
"""


@dataclass(frozen=True)
class Claim:
    """The outcome of ``claim``: ``claimed`` or, when not, the row's state (``status`` None when
    there is no such delivery)."""

    claimed: bool
    status: DeliveryStatus | None
    attempts: int = 0
    claimed_by: str | None = None
    claim_remaining_seconds: float = 0.0


@dataclass(frozen=True)
class _ClaimKey:
    channel: Channel
    claimed_by: str
    lease_seconds: float


class DeliveryRepository:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._claims: dict[_ClaimKey, StatementBatcher[uuid.UUID, Claim]] = {}
        self._sent: dict[Channel, StatementBatcher[tuple[uuid.UUID, str | None, str | None], None]] = {}

    async def claim(
        self, *, notification_id: uuid.UUID, channel: Channel, claimed_by: str, lease_seconds: float
    ) -> Claim:
        key = _ClaimKey(channel, claimed_by, lease_seconds)
        batcher = self._claims.get(key)
        if batcher is None:
            batcher = self._claims[key] = StatementBatcher(lambda ids: self._claim_batch(key, ids))
        return await batcher.submit(notification_id)

    async def mark_sent(
        self,
        *,
        notification_id: uuid.UUID,
        channel: Channel,
        provider_message_id: str | None,
        provider: str | None = None,
    ) -> None:
        batcher = self._sent.get(channel)
        if batcher is None:
            batcher = self._sent[channel] = StatementBatcher(lambda sent: self._mark_sent_batch(channel, sent))
        await batcher.submit((notification_id, provider_message_id, provider))

    async def mark_failed(
        self, *, notification_id: uuid.UUID, channel: Channel, claimed_by: str, reason: str, provider: str | None = None
    ) -> bool:
        """Record a final failure; False when the claim was no longer ours (nothing changed)."""
        return await self._settle(
            notification_id=notification_id,
            channel=channel,
            claimed_by=claimed_by,
            status=DeliveryStatus.FAILED,
            reason=reason,
            provider=provider,
        )

    async def release(
        self, *, notification_id: uuid.UUID, channel: Channel, claimed_by: str, reason: str, provider: str | None = None
    ) -> bool:
        """Give a claim back after a transient failure: ``pending`` again, with the reason."""
        return await self._settle(
            notification_id=notification_id,
            channel=channel,
            claimed_by=claimed_by,
            status=DeliveryStatus.PENDING,
            reason=reason,
            provider=provider,
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
        async with self._database.connection() as connection:
            status = await connection.execute(_EXTEND_CLAIMS, list(notification_ids), channel.value, claimed_by, lease_seconds)
        return _row_count(status)

    # -- statements ----------------------------------------------------------------------

    async def _claim_batch(self, key: _ClaimKey, notification_ids: list[uuid.UUID]) -> list[Claim]:
        async with self._database.connection() as connection:
            won = {
                row[0]: row[1]
                for row in await connection.fetch(_CLAIM, notification_ids, key.channel.value, key.claimed_by, key.lease_seconds)
            }
            lost = {notification_id for notification_id in notification_ids if notification_id not in won}
            states = (
                {row[0]: row for row in await connection.fetch(_CLAIM_STATES, list(lost), key.channel.value)} if lost else {}
            )
        claims = []
        for notification_id in notification_ids:
            # pop: of two copies of one message in a batch only the first has the claim.
            attempts = won.pop(notification_id, None)
            if attempts is not None:
                claims.append(Claim(True, DeliveryStatus.SENDING, attempts, key.claimed_by))
            elif notification_id in states:
                _, status, row_attempts, claimed_by, remaining = states[notification_id]
                claims.append(Claim(False, DeliveryStatus(status), row_attempts, claimed_by, remaining or 0.0))
            elif notification_id in lost:
                claims.append(Claim(claimed=False, status=None))
            else:
                # The second copy of a message claimed in this very statement.
                claims.append(Claim(False, DeliveryStatus.SENDING, 0, key.claimed_by, key.lease_seconds))
        return claims

    async def _mark_sent_batch(self, channel: Channel, sent: list[tuple[uuid.UUID, str | None, str | None]]) -> list[None]:
        ids = [notification_id for notification_id, _, _ in sent]
        provider_ids = [provider_message_id for _, provider_message_id, _ in sent]
        providers = [provider for _, _, provider in sent]
        async with self._database.connection() as connection:
            await connection.execute(_MARK_SENT, ids, provider_ids, channel.value, providers)
        return [None] * len(sent)

    async def _settle(
        self,
        *,
        notification_id: uuid.UUID,
        channel: Channel,
        claimed_by: str,
        status: DeliveryStatus,
        reason: str,
        provider: str | None,
    ) -> bool:
        async with self._database.connection() as connection:
            outcome = await connection.execute(
                _SETTLE, notification_id, channel.value, claimed_by, status.value, reason, provider
            )
        return _row_count(outcome) == 1


def _row_count(status: str) -> int:
    """Rows an UPDATE changed, from asyncpg's command tag (``UPDATE 3``)."""
    return int(status.rpartition(" ")[2] or 0)
