"""A delivery's status: one enum for the gateway, the senders and notifyctl (no SQLAlchemy here,
so a sender can import it). Status never moves backwards; ``shared/deliveries.py`` says who
moves it when."""

from __future__ import annotations

from enum import StrEnum


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # accepted, not yet picked up by the channel's sender
    SENDING = "sending"  # claimed by a sender that is calling the provider now
    SENT = "sent"
    FAILED = "failed"


# Statuses a delivery does not leave (for ``notifyctl status --wait``).
FINAL_STATUSES = frozenset({DeliveryStatus.SENT, DeliveryStatus.FAILED})
