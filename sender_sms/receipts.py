"""What an SNS SMS delivery status log record says: one CloudWatch Logs event of the groups
``sns/<region>/<account>/DirectPublishToPhoneNumber`` (successes) and ``.../Failure`` turned into
a ``Receipt``.

A record, as AWS documents it: ``{"notification": {"messageId", "timestamp"}, "delivery":
{"destination", "providerResponse", "dwellTimeMs", ...}, "status": "SUCCESS" | "FAILURE"}``.
SUCCESS -> delivered; FAILURE -> failed with ``delivery.providerResponse``, and a response saying
the number is opted out suppresses it. The log event's own id is the receipt's event id.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from shared.channels import Channel
from shared.receipts import Receipt, ReceiptEffect

# How SNS words an opt-out in providerResponse ("Phone is currently opted out").
OPTED_OUT_MARKER = "opted out"


class MalformedRecordError(ValueError):
    """Not a delivery status record as documented: logged and skipped."""


def sms_receipt(event_id: str, message: str) -> Receipt:
    """The receipt a delivery status log event (its ``eventId`` and ``message``) carries."""
    try:
        record = json.loads(message)
        notification, delivery, status = record["notification"], record.get("delivery") or {}, record["status"]
        message_id = notification["messageId"]
        at = _timestamp(notification["timestamp"])
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise MalformedRecordError(f"not an SNS SMS delivery status record: {type(exc).__name__}: {exc}") from None
    if status not in ("SUCCESS", "FAILURE") or not isinstance(message_id, str):
        raise MalformedRecordError(f"SNS SMS delivery status record with status {status!r}")
    response = delivery.get("providerResponse")
    detail: dict[str, Any] = {key: delivery[key] for key in ("providerResponse", "dwellTimeMs", "phoneCarrier", "priceInUSD") if key in delivery}
    if status == "SUCCESS":
        effect, reason, suppress = ReceiptEffect.DELIVERED, None, None
    else:
        effect, reason = ReceiptEffect.FAILED, f"carrier did not deliver it: {response or 'no response given'}"
        opted_out = isinstance(response, str) and OPTED_OUT_MARKER in response.lower()
        suppress = f"opted out: {response}" if opted_out else None
    return Receipt(
        channel=Channel.SMS,
        provider_message_id=message_id,
        provider_event_id=event_id,
        event=status,
        at=at,
        effect=effect,
        detail=detail,
        reason=reason,
        suppress=suppress,
    )


def _timestamp(value: str) -> datetime:
    # "2016-06-28 00:40:34.558", in UTC.
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
