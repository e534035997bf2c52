"""Signing and the classification of a receiver's answers (callback_sender/webhook.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from callback_sender.repository import ClaimedEvent
from callback_sender.webhook import classify, signature_headers
from gateway.callbacks.service import new_secret
from shared.callback_events import event_body


def _event(*secrets: str) -> ClaimedEvent:
    return ClaimedEvent(
        id=uuid.uuid4(),
        client="acme",
        type="delivery.sent",
        data={"sent_at": "2026-01-01T00:00:01.000000Z", "channel": "sms", "notification_id": "n", "status": "sent", "attempts": 1,
              "last_error": None, "provider_message_id": "p", "created_at": "2026-01-01T00:00:00.000000Z"},
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        attempts=1,
        url="https://example.com/hooks",
        secrets=secrets,
    )


class TestSignatures:
    def test_standardwebhooks_verifies_what_we_sign(self) -> None:
        secret = new_secret()
        event = _event(secret)
        body = event_body(type_=event.type, occurred_at=event.occurred_at, data=event.data)
        headers = signature_headers(event, body)
        assert headers["webhook-id"] == str(event.id)
        assert Webhook(secret).verify(body, headers)["data"]["channel"] == "sms"
        with pytest.raises(WebhookVerificationError):
            Webhook(new_secret()).verify(body, headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(body.replace("sms", "SMS"), headers)

    def test_both_secrets_sign_after_a_rotation(self) -> None:
        current, previous = new_secret(), new_secret()
        event = _event(current, previous)
        body = event_body(type_=event.type, occurred_at=event.occurred_at, data=event.data)
        headers = signature_headers(event, body)
        assert len(headers["webhook-signature"].split(" ")) == 2
        assert Webhook(current).verify(body, headers) and Webhook(previous).verify(body, headers)

    def test_the_id_and_body_stay_the_same_on_every_attempt(self) -> None:
        event = _event(new_secret())
        bodies = {event_body(type_=event.type, occurred_at=event.occurred_at, data=event.data) for _ in range(3)}
        assert len(bodies) == 1
        assert signature_headers(event, bodies.pop())["webhook-id"] == str(event.id)

    def test_the_body_lists_the_fields_in_the_documented_order(self) -> None:
        event = _event(new_secret())
        body = event_body(type_=event.type, occurred_at=event.occurred_at, data=event.data)
        assert body.startswith('{"type":"delivery.sent","timestamp":"2026-01-01T00:00:00.000000Z","data":{"notification_id":"n","channel":"sms"')
        assert body.endswith('"created_at":"2026-01-01T00:00:00.000000Z","sent_at":"2026-01-01T00:00:01.000000Z"}}')


class TestClassify:
    @pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
    def test_2xx_is_delivered(self, status: int) -> None:
        assert classify(status, retry_after=None, body="").kind == "delivered"

    @pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 408])
    def test_5xx_429_and_408_are_retried(self, status: int) -> None:
        attempt = classify(status, retry_after="7", body="busy\n  now")
        assert (attempt.kind, attempt.retry_after, attempt.detail) == ("transient", 7.0, f"HTTP {status}: busy now")

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413, 422])
    def test_other_4xx_are_not(self, status: int) -> None:
        assert classify(status, retry_after="7", body="").kind == "permanent"

    def test_a_redirect_is_not_followed_and_says_so(self) -> None:
        attempt = classify(301, retry_after=None, body="")
        assert attempt.kind == "permanent" and "redirects are not followed" in attempt.detail

    def test_a_long_body_is_cut(self) -> None:
        assert len(classify(500, retry_after=None, body="x" * 5000).detail) < 220
