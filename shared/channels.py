"""The delivery channels, described once.

Everything that lists channels reads them here: the gateway (which contact of a recipient each
channel uses, and the limits it checks a message against before accepting it), the database's
check constraint (``shared/tables.py``), the SNS/SQS topology (``shared/topology.py``: one queue
and one dead-letter queue per channel), the senders and notifyctl's channel arguments. Adding a
channel starts with one entry in ``CHANNELS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"
    SLACK = "slack"


@dataclass(frozen=True)
class ChannelLimits:
    """What the channel's provider refuses, so that the gateway refuses it first (400), before
    anything is stored, rather than a sender failing on it later. ``None``: no such limit."""

    # SMS: SNS refuses a publish over 1,600 bytes (counted as in ``shared/sms.py``).
    sms_bytes: int | None = None
    # Slack: chat.postMessage refuses (msg_too_long) text over 40,000 characters.
    text_characters: int | None = None
    # Email: the subject is one header line (no CR or LF) of at most this many characters.
    subject_characters: int | None = None


@dataclass(frozen=True)
class ChannelSpec:
    channel: Channel
    # The recipient's contact for this channel: the column of ``recipients`` and ``notifications``
    # (the snapshot), and the field of the API's recipient and of ``RecipientSnapshot``.
    contact_field: str
    queue: str
    dead_letter_queue: str
    # The bulk lane's queues (batch items): see shared/topology.py.
    bulk_queue: str
    bulk_dead_letter_queue: str
    limits: ChannelLimits


def _spec(channel: Channel, *, contact_field: str, limits: ChannelLimits) -> ChannelSpec:
    return ChannelSpec(
        channel=channel,
        contact_field=contact_field,
        queue=f"{channel.value}_notifications",
        dead_letter_queue=f"{channel.value}_notifications_dlq",
        bulk_queue=f"{channel.value}_bulk_notifications",
        bulk_dead_letter_queue=f"{channel.value}_bulk_notifications_dlq",
        limits=limits,
    )


# In the order the API lists a notification's channels.
CHANNELS: tuple[ChannelSpec, ...] = (
    _spec(Channel.SMS, contact_field="phone_number", limits=ChannelLimits(sms_bytes=1600)),
    _spec(Channel.EMAIL, contact_field="email", limits=ChannelLimits(subject_characters=200)),
    _spec(Channel.SLACK, contact_field="slack_id", limits=ChannelLimits(text_characters=40_000)),
)
_BY_CHANNEL = {spec.channel: spec for spec in CHANNELS}
assert tuple(_BY_CHANNEL) == tuple(Channel), "every Channel is described once, in the enum's order"

CHANNEL_NAMES: tuple[str, ...] = tuple(spec.channel.value for spec in CHANNELS)
CONTACT_FIELDS: tuple[str, ...] = tuple(spec.contact_field for spec in CHANNELS)


def channel_spec(channel: Channel | str) -> ChannelSpec:
    return _BY_CHANNEL[Channel(channel)]
