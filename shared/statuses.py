"""A delivery's status: one enum for the gateway, the senders and notifyctl (no SQLAlchemy here,
so a sender can import it). Status never moves backwards; ``shared/deliveries.py`` says who
moves it when."""

from __future__ import annotations

from enum import StrEnum


class DeliveryStatus(StrEnum):
    # Accepted with a release time (send_at, or the recipient's quiet hours): its outbox row is
    # due then, and the relay that claims it makes it ``pending`` before publishing.
    SCHEDULED = "scheduled"
    PENDING = "pending"  # accepted, not yet picked up by the channel's sender
    SENDING = "sending"  # claimed by a sender that is calling the provider now
    SENT = "sent"  # the provider took it
    # The provider reported it delivered (an SES Delivery event, an SNS SMS SUCCESS log record);
    # never for Slack, whose ``ok`` is final and stays ``sent``. See shared/receipts.py.
    DELIVERED = "delivered"
    FAILED = "failed"
    # Never attempted, written so by the accept with the reason in last_error (the recipient
    # turned the channel off); no queue message is published for it.
    SKIPPED = "skipped"
    # Cancelled by its client while scheduled (POST /notifications/{id}/cancel), or, of a
    # ``delivery: first`` notification, not needed because another channel was sent; never published.
    CANCELLED = "cancelled"
    # Of a ``delivery: first`` notification: a later channel, tried only if the ones before it
    # end failed or skipped (migration 0017's trigger releases it to ``pending``); never published until then.
    WAITING = "waiting"


# Statuses a delivery does not leave (for ``notifyctl status --wait``, and for the senders: a
# message whose delivery has one of them is a duplicate, deleted unsent).
# ``sent`` is final to the senders; only a receipt moves it on (to ``delivered`` or ``failed``).
FINAL_STATUSES = frozenset(
    {DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED, DeliveryStatus.CANCELLED}
)
