"""``notifyctl reconcile``: publish again the deliveries whose queue message is lost.

Postgres is the source of truth: every delivery is a row, the queues only carry work in progress.
A delivery's message can be lost without its row knowing (the queue was purged, or deleted, or lost
with its region). Such a delivery is *lost* when it is not final (``pending`` or ``sending``), no
outbox row still owes it to SNS, and it has shown no sign of life for ``--older-than`` (default 15
minutes): not accepted or changed (``updated_at``), published (``published_at``, which the outbox
writes when SNS takes the message) or held by a claim (``claimed_until``, extended while a send
runs) in that time. A live message cannot be that quiet: a sender receives it within the queue's
visibility timeout (60 s) and claims it, a released claim is retried within the senders' back-off,
a dead sender's lease ends.

What happens to a lost delivery:

- It is owed again through the outbox, the one way anything reaches SNS (``gateway/outbox/``): one
  statement writes an outbox row per notification, addressed to its lost channels and claimed for
  this process as a relay claims rows; this process publishes them as the relay does (the same
  message the accept published), and the rows SNS took are deleted.
- SNS refuses, or this process dies: the rows stay in the outbox, and the gateways' relays publish
  them once the claim's lease ends. Nothing found is dropped.
- A message that did survive after all (a queue that was only slow): the sender that gets the second
  copy finds the delivery claimed or final and deletes it unsent (``shared/deliveries.py``); at worst
  a transient failure's retry comes early.

``--dry-run`` changes nothing: it counts what would be published again. Before publishing, it
refuses when CloudWatch says a queue still holds a message older than ``--older-than``
(``ApproximateAgeOfOldestMessage``, as ``notifyctl capacity`` reads it): those deliveries have a live
message, one the senders have not reached yet, and publishing them again would only double the
backlog. When CloudWatch has no data point or cannot be read, it says so and goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from gateway.outbox.publisher import SnsPublisher
from gateway.outbox.relay import OutboxRelay
from gateway.outbox.repository import OutboxRepository
from notifyctl.capacity import oldest_message_ages
from notifyctl.errors import FailedError
from notifyctl.output import format_age
from shared.channels import Channel
from shared.database import Database
from shared.topology import queues_for

# Lost deliveries owed again per statement, and how long this process holds their outbox rows
# before a gateway's relay may publish them instead.
BATCH_SIZE = 500
LEASE_SECONDS = 60.0


@dataclass
class ChannelReconciliation:
    channel: str
    found: int = 0  # lost deliveries
    pending: int = 0
    sending: int = 0  # of them, claims whose lease ended long ago
    oldest_last_seen: datetime | None = None
    republished: int = 0
    left_in_outbox: int = 0  # SNS did not take them; the gateways' relays publish them


@dataclass
class Reconciliation:
    dry_run: bool
    older_than_seconds: float
    channels: list[ChannelReconciliation]
    warnings: list[str] = field(default_factory=list)


class Reconciler:
    """Finds lost deliveries and publishes them again (the module docstring tells how)."""

    def __init__(self, *, database: Database, sns: SnsPublisher, cloudwatch: Any, max_backoff: float) -> None:
        self._database, self._cloudwatch = database, cloudwatch
        self._outbox = OutboxRepository()
        self._relay = OutboxRelay(sns=sns, database=database, poll_interval=1.0, batch_size=BATCH_SIZE, max_backoff=max_backoff)

    async def reconcile(self, channels: Sequence[Channel], *, older_than_seconds: float, dry_run: bool) -> Reconciliation:
        result = Reconciliation(dry_run, older_than_seconds, [ChannelReconciliation(channel.value) for channel in channels])
        by_channel = {c.channel: c for c in result.channels}
        async with self._database.connection() as connection:
            summary = await self._outbox.lost_summary(connection, channels=list(by_channel), older_than_seconds=older_than_seconds)
        for row in summary:
            found = by_channel[row["channel"]]
            found.found += row["deliveries"]
            setattr(found, row["status"], row["deliveries"])
            if found.oldest_last_seen is None or row["oldest_last_seen"] < found.oldest_last_seen:
                found.oldest_last_seen = row["oldest_last_seen"]
        result.warnings += await self._backlog_warnings(channels, older_than_seconds=older_than_seconds, refuse=not dry_run)
        if dry_run or not summary:
            return result

        seen: set[Any] = set()
        while True:
            async with self._database.connection() as connection:
                rows = await self._outbox.owe_lost(
                    connection, channels=list(by_channel), older_than_seconds=older_than_seconds, limit=BATCH_SIZE, lease_seconds=LEASE_SECONDS
                )
            if not rows:
                break
            published = set(await self._relay.publish_claimed(rows))
            for row in rows:
                for channel in row["publication_channels"]:
                    if row["outbox_id"] in published:
                        by_channel[channel].republished += 1
                    else:
                        by_channel[channel].left_in_outbox += 1
            # Published rows have a new sign of life, unpublished ones an outbox row: neither is
            # found again. Should a row be, stop rather than publish it round and round.
            ids = {row["id"] for row in rows}
            if ids <= seen:
                break
            seen |= ids
        return result

    async def _backlog_warnings(self, channels: Sequence[Channel], *, older_than_seconds: float, refuse: bool) -> list[str]:
        try:
            ages = await oldest_message_ages(self._cloudwatch, channels)
        except ClientError as exc:
            return [f"could not read the queues' oldest message age from CloudWatch ({exc}); not checked for a backlog"]
        warnings, backlogged = [], []
        for channel in channels:
            if channel not in ages:
                warnings.append(f"{channel.value}: CloudWatch has no ApproximateAgeOfOldestMessage for {queues_for(channel).queue}; not checked for a backlog")
                continue
            age, measured_at = ages[channel]
            if age >= older_than_seconds:
                backlogged.append(
                    f"{channel.value}: {queues_for(channel).queue} holds a message {format_age(age)} old (CloudWatch, {measured_at:%H:%M} UTC), "
                    f"older than --older-than {format_age(older_than_seconds)}"
                )
        if backlogged and refuse:
            raise FailedError(
                "refused, nothing published: "
                + "; ".join(backlogged)
                + ". Those deliveries still have a message the senders have not reached: let the backlog drain "
                "(notifyctl capacity), or give a longer --older-than, or leave that channel out (--channel)"
            )
        return warnings + backlogged
