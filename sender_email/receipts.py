"""What an SES event says about an email: the SNS notification on ``email_events`` (raw delivery
off: the envelope's ``Message`` is the SES event JSON) turned into a ``Receipt``.

The mapping (issue 13): ``Delivery`` -> delivered; ``Bounce`` ``Permanent`` -> failed with the
bounce's reason, and the address suppressed; ``Bounce`` ``Transient``/``Undetermined`` ->
recorded, status unchanged; ``Complaint`` -> recorded, the address suppressed; ``Reject`` and
``Rendering Failure`` -> failed. Other events (Send, Open, Click, DeliveryDelay ...) are not
receipts: ``None``. The type is ``eventType``, or ``notificationType`` for identity notifications.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from shared.channels import Channel
from shared.receipts import Receipt, ReceiptEffect


class MalformedEventError(ValueError):
    """Not an SES event this consumer can read: it goes to the dead-letter queue with this reason."""


def email_receipt(body: str) -> Receipt | None:
    """The receipt an ``email_events`` SQS message carries, or None when it is not one."""
    try:
        envelope = json.loads(body)
        event = json.loads(envelope["Message"]) if "Message" in envelope else envelope
        kind = event.get("eventType") or event.get("notificationType")
        message_id = event["mail"]["messageId"]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise MalformedEventError(f"not an SES event in an SNS notification: {type(exc).__name__}: {exc}") from None
    if not isinstance(kind, str) or not isinstance(message_id, str):
        raise MalformedEventError("SES event without an eventType/notificationType or a mail.messageId")
    reader = _READERS.get(kind)
    if reader is None:
        return None
    try:
        return reader(event, message_id)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise MalformedEventError(f"SES {kind} event not as documented: {type(exc).__name__}: {exc}") from None


def _timestamp(section: dict[str, Any], event: dict[str, Any]) -> datetime:
    value = section.get("timestamp") or event["mail"]["timestamp"]
    return datetime.fromisoformat(value)


def _event_id(kind: str, message_id: str, section: dict[str, Any]) -> str:
    # Bounces and complaints carry SES's feedbackId; the others are one per message and kind.
    return section.get("feedbackId") or f"{kind}/{message_id}/{section.get('timestamp', '')}"


def _delivery(event: dict[str, Any], message_id: str) -> Receipt:
    section = event["delivery"]
    detail = {key: section[key] for key in ("smtpResponse", "reportingMTA", "processingTimeMillis", "remoteMtaIp") if key in section}
    return Receipt(
        channel=Channel.EMAIL,
        provider_message_id=message_id,
        provider_event_id=_event_id("Delivery", message_id, section),
        event="Delivery",
        at=_timestamp(section, event),
        effect=ReceiptEffect.DELIVERED,
        detail=detail,
    )


def _bounce(event: dict[str, Any], message_id: str) -> Receipt:
    section = event["bounce"]
    bounce_type, subtype = section["bounceType"], section.get("bounceSubType")
    recipients = section.get("bouncedRecipients") or []
    diagnostic = next((r.get("diagnosticCode") for r in recipients if r.get("diagnosticCode")), None)
    reason = f"bounced ({bounce_type}/{subtype})" + (f": {diagnostic}" if diagnostic else "")
    permanent = bounce_type == "Permanent"
    return Receipt(
        channel=Channel.EMAIL,
        provider_message_id=message_id,
        provider_event_id=_event_id("Bounce", message_id, section),
        event="Bounce",
        type=bounce_type,
        subtype=subtype,
        at=_timestamp(section, event),
        effect=ReceiptEffect.FAILED if permanent else ReceiptEffect.RECORDED,
        detail={"bouncedRecipients": recipients, **({"reportingMTA": section["reportingMTA"]} if "reportingMTA" in section else {})},
        reason=reason if permanent else None,
        suppress=reason if permanent else None,
    )


def _complaint(event: dict[str, Any], message_id: str) -> Receipt:
    section = event["complaint"]
    feedback_type = section.get("complaintFeedbackType")
    detail = {key: section[key] for key in ("complainedRecipients", "userAgent", "arrivalDate") if key in section}
    return Receipt(
        channel=Channel.EMAIL,
        provider_message_id=message_id,
        provider_event_id=_event_id("Complaint", message_id, section),
        event="Complaint",
        type=feedback_type,
        at=_timestamp(section, event),
        effect=ReceiptEffect.RECORDED,
        detail=detail,
        suppress="complaint" + (f" ({feedback_type})" if feedback_type else ""),
    )


def _reject(event: dict[str, Any], message_id: str) -> Receipt:
    section = event.get("reject") or {}
    reason = f"rejected by SES: {section.get('reason', 'no reason given')}"
    return Receipt(
        channel=Channel.EMAIL,
        provider_message_id=message_id,
        provider_event_id=_event_id("Reject", message_id, section),
        event="Reject",
        at=_timestamp(section, event),
        effect=ReceiptEffect.FAILED,
        detail=section,
        reason=reason,
    )


def _rendering_failure(event: dict[str, Any], message_id: str) -> Receipt:
    section = event.get("failure") or {}
    return Receipt(
        channel=Channel.EMAIL,
        provider_message_id=message_id,
        provider_event_id=_event_id("Rendering Failure", message_id, section),
        event="Rendering Failure",
        at=_timestamp(section, event),
        effect=ReceiptEffect.FAILED,
        detail=section,
        reason=f"SES could not render it: {section.get('errorMessage', 'no reason given')}",
    )


_READERS = {
    "Delivery": _delivery,
    "Bounce": _bounce,
    "Complaint": _complaint,
    "Reject": _reject,
    "Rendering Failure": _rendering_failure,
}
