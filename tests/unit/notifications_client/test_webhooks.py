"""notifications_client/_webhooks.py: verify_callback against payloads signed with standardwebhooks."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from notifications_client import CallbackEventType, CallbackVerificationError, Channel, DeliveryStatus, verify_callback

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
EVENT = {
    "type": "delivery.sent",
    "timestamp": "2026-11-23T10:15:02.123456Z",
    "data": {
        "notification_id": "0b4f0a1e-6c1e-4c52-9a35-3f1f5a7e2b10",
        "channel": "sms",
        "status": "sent",
        "attempts": 1,
        "last_error": None,
        "provider_message_id": "5f2c",
        "created_at": "2026-11-23T10:15:01.004211Z",
        "sent_at": "2026-11-23T10:15:02.120001Z",
    },
}


def signed(body: bytes, *, secret: str = SECRET, at: datetime | None = None) -> dict[str, str]:
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign("evt_1", at, body.decode())
    return {"Webhook-Id": "evt_1", "Webhook-Timestamp": str(int(at.timestamp())), "Webhook-Signature": signature}


class TestVerifyCallback:
    def test_a_signed_event_is_read(self) -> None:
        body = json.dumps(EVENT).encode()
        event = verify_callback(signed(body), body, SECRET)
        assert (event.type, event.data.channel, event.data.status) == (CallbackEventType.SENT, Channel.SMS, DeliveryStatus.SENT)
        assert event.data.provider_message_id == "5f2c"

    def test_another_secret_is_refused(self) -> None:
        body = json.dumps(EVENT).encode()
        other = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        with pytest.raises(CallbackVerificationError, match="not signed with this secret"):
            verify_callback(signed(body, secret=other), body, SECRET)

    def test_a_changed_body_is_refused(self) -> None:
        body = json.dumps(EVENT).encode()
        with pytest.raises(CallbackVerificationError):
            verify_callback(signed(body), body.replace(b'"sent"', b'"failed"', 1), SECRET)

    def test_a_stale_timestamp_is_refused(self) -> None:
        body = json.dumps(EVENT).encode()
        with pytest.raises(CallbackVerificationError):
            verify_callback(signed(body, at=datetime.now(UTC) - timedelta(minutes=10)), body, SECRET)

    def test_signed_but_not_an_event(self) -> None:
        body = b'{"hello": "world"}'
        with pytest.raises(CallbackVerificationError, match="not a delivery event"):
            verify_callback(signed(body), body, SECRET)
