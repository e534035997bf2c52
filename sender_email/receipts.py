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


def _receipt(kind: str, event: dict[str, Any], message_id: str, section: dict[str, Any], **fields: Any) -> Receipt:
    """A receipt of ``kind`` for the email ``message_id``: its time and event id from ``section``
    (the event's own object: ``delivery``, ``bounce`` ...), the rest from ``fields``."""
    # Bounces and complaints carry SES's feedbackId; the others are one per message and kind.
    event_id = section.get("feedbackId") or f"{kind}/{message_id}/{section.get('timestamp', '')}"
    at = datetime.fromisoformat(section.get("timestamp") or event["mail"]["timestamp"])
    return Receipt(channel=Channel.EMAIL, provider_message_id=message_id, provider_event_id=event_id, event=kind, at=at, **fields)


def _picked(section: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: section[key] for key in keys if key in section}


def _delivery(event: dict[str, Any], message_id: str) -> Receipt:
    section = event["delivery"]
    detail = _picked(section, "smtpResponse", "reportingMTA", "processingTimeMillis", "remoteMtaIp")
    return _receipt("Delivery", event, message_id, section, effect=ReceiptEffect.DELIVERED, detail=detail)


def _bounce(event: dict[str, Any], message_id: str) -> Receipt:
    section = event["bounce"]
    bounce_type, subtype = section["bounceType"], section.get("bounceSubType")
    recipients = section.get("bouncedRecipients") or []
    diagnostic = next((r.get("diagnosticCode") for r in recipients if r.get("diagnosticCode")), None)
    reason = f"bounced ({bounce_type}/{subtype})" + (f": {diagnostic}" if diagnostic else "")
    permanent = bounce_type == "Permanent"
    return _receipt(
        "Bounce",
        event,
        message_id,
        section,
        type=bounce_type,
        subtype=subtype,
        effect=ReceiptEffect.FAILED if permanent else ReceiptEffect.RECORDED,
        detail={"bouncedRecipients": recipients, **_picked(section, "reportingMTA")},
        reason=reason if permanent else None,
        suppress=reason if permanent else None,
    )


def _complaint(event: dict[str, Any], message_id: str) -> Receipt:
    section = event["complaint"]
    feedback_type = section.get("complaintFeedbackType")
    return _receipt(
        "Complaint",
        event,
        message_id,
        section,
        type=feedback_type,
        effect=ReceiptEffect.RECORDED,
        detail=_picked(section, "complainedRecipients", "userAgent", "arrivalDate"),
        suppress="complaint" + (f" ({feedback_type})" if feedback_type else ""),
    )


def _reject(event: dict[str, Any], message_id: str) -> Receipt:
    section = event.get("reject") or {}
    reason = f"rejected by SES: {section.get('reason', 'no reason given')}"
    return _receipt("Reject", event, message_id, section, effect=ReceiptEffect.FAILED, detail=section, reason=reason)


def _rendering_failure(event: dict[str, Any], message_id: str) -> Receipt:
    section = event.get("failure") or {}
    reason = f"SES could not render it: {section.get('errorMessage', 'no reason given')}"
    return _receipt("Rendering Failure", event, message_id, section, effect=ReceiptEffect.FAILED, detail=section, reason=reason)


_READERS = {
    "Delivery": _delivery,
    "Bounce": _bounce,
    "Complaint": _complaint,
    "Reject": _reject,
    "Rendering Failure": _rendering_failure,
}
