"""What a recipient wants: the channels it turned off, globally and per category.

The document is ``recipients.preferences`` (JSON, NULL when never set): ``{"channels": {"sms":
false}, "categories": {"marketing": {"email": false}}, "quiet_hours": {"start": "22:00", "end": "07:00",
"timezone": "Europe/Berlin"}}``, only what the recipient said; a channel not mentioned is on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.recipients.quiet_hours import QuietHours
from gateway.recipients.schemas import ChannelSwitchesPublic, RecipientPreferencesPublic
from shared.channels import Channel


@dataclass(frozen=True, slots=True)
class Preferences:
    document: Mapping[str, Any]

    @classmethod
    def from_column(cls, value: str | None) -> Preferences | None:
        return cls(json.loads(value)) if value is not None else None

    def turned_off(self, channel: Channel | str, category: str) -> str | None:
        """Why ``channel`` is not sent for a notification of ``category``, or None when it is."""
        channel = Channel(channel).value
        if self.document.get("channels", {}).get(channel) is False:
            return f"recipient turned off {channel}"
        if self.document.get("categories", {}).get(category, {}).get(channel) is False:
            return f"recipient turned off {channel} for {category}"
        return None

    @property
    def quiet_hours(self) -> QuietHours | None:
        stored = self.document.get("quiet_hours")
        return QuietHours.from_document(stored) if stored is not None else None


def public_preferences(document: Mapping[str, Any] | None) -> RecipientPreferencesPublic:
    """What GET answers: every switch, on unless the recipient turned it off."""
    document = document or {}

    def switches(stored: Mapping[str, bool]) -> ChannelSwitchesPublic:
        return ChannelSwitchesPublic(**{channel.value: stored.get(channel.value) is not False for channel in Channel})

    return RecipientPreferencesPublic(
        channels=switches(document.get("channels", {})),
        categories={category: switches(stored) for category, stored in sorted(document.get("categories", {}).items())},
        quiet_hours=document.get("quiet_hours"),
    )
