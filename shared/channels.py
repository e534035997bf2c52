"""The delivery channels, described once.

Everything that lists channels reads them here: the gateway (which contact of a recipient each
channel uses), the database's check constraint (``shared/tables.py``), the SNS/SQS topology
(``shared/topology.py``: one queue and one dead-letter queue per channel), the senders and
notifyctl's channel arguments. Adding a channel starts with one entry in ``CHANNELS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"
    SLACK = "slack"


@dataclass(frozen=True)
class ChannelSpec:
    channel: Channel
    # The recipient's contact for this channel: the column of ``recipients`` and ``notifications``
    # (the snapshot), and the field of the API's recipient and of ``RecipientSnapshot``.
    contact_field: str
    queue: str
    dead_letter_queue: str


def _spec(channel: Channel, *, contact_field: str) -> ChannelSpec:
    return ChannelSpec(
        channel=channel,
        contact_field=contact_field,
        queue=f"{channel.value}_notifications",
        dead_letter_queue=f"{channel.value}_notifications_dlq",
    )


# In the order the API lists a notification's channels.
CHANNELS: tuple[ChannelSpec, ...] = (
    _spec(Channel.SMS, contact_field="phone_number"),
    _spec(Channel.EMAIL, contact_field="email"),
    _spec(Channel.SLACK, contact_field="slack_id"),
)
_BY_CHANNEL = {spec.channel: spec for spec in CHANNELS}
assert tuple(_BY_CHANNEL) == tuple(Channel), "every Channel is described once, in the enum's order"

CHANNEL_NAMES: tuple[str, ...] = tuple(spec.channel.value for spec in CHANNELS)
CONTACT_FIELDS: tuple[str, ...] = tuple(spec.contact_field for spec in CHANNELS)


def channel_spec(channel: Channel | str) -> ChannelSpec:
    return _BY_CHANNEL[Channel(channel)]
