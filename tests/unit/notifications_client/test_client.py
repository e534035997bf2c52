"""notifications_client/_client.py: what is retried, how long it waits, and that every retry of a
send repeats its Idempotency-Key; the errors a caller gets (httpx.MockTransport: no network)."""

from __future__ import annotations

import json

import ssl
from typing import Any

import httpx
import pytest

from notifications_client import (
    AsyncClient,
    Client,
    Conflict,
    DeliveryFailed,
    DeliveryStatus,
    Forbidden,
    NotFound,
    RateLimited,
    RetryPolicy,
    ServiceUnavailable,
    TransportError,
    ValidationError,
    WaitTimeout,
)

ACCEPTED = {
    "id": "0b4f0a1e-6c1e-4c52-9a35-3f1f5a7e2b10",
    "recipient": "jane",
    "message": "hi",
    "category": "general",
    "channels": ["sms"],
    "sms_fragments": 1,
    "sms_encoding": "GSM-7",
    "created_at": "2026-12-02T01:00:00.000001Z",
}

Answer = httpx.Response | Exception


class Script:
    """A transport that answers each request with the next of ``answers`` (an exception is raised
    as a transport failure would be) and records every request."""

    def __init__(self, *answers: Answer) -> None:
        self.answers, self.requests = list(answers), []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def client(script: Script, *, retry: RetryPolicy | None = None) -> tuple[Client, list[float]]:
    sleeps: list[float] = []
    made = Client(
        "https://gateway.test", ssl_context=ssl.create_default_context(), transport=httpx.MockTransport(script), retry=retry or RetryPolicy()
    )
    made._sleep = sleeps.append
    return made, sleeps


def error(status: int, message: str, *, field: str | None = None, retry_after: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"message": message, **({"field": field} if field else {})}
    return httpx.Response(status, json=body, headers={"Retry-After": retry_after} if retry_after else {})


def connection_reset() -> httpx.ReadError:
    return httpx.ReadError("connection reset by peer")


def connection_refused() -> httpx.ConnectError:
    return httpx.ConnectError("connection refused")


class TestSendRetries:
    def test_a_lost_answer_is_retried_with_the_same_key(self) -> None:
        script = Script(connection_reset(), connection_reset(), httpx.Response(201, json=ACCEPTED, headers={"Idempotent-Replayed": "true"}))
        made, sleeps = client(script)
        accepted = made.send("jane", message="hi", channels=["sms"])
        assert accepted.replayed is True and str(accepted.id) == ACCEPTED["id"]
        keys = {request.headers["Idempotency-Key"] for request in script.requests}
        assert len(script.requests) == 3 and len(keys) == 1
        assert [request.content for request in script.requests] == [script.requests[0].content] * 3
        assert len(sleeps) == 2 and 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0

    def test_each_send_has_its_own_key_unless_given(self) -> None:
        script = Script(*(httpx.Response(201, json=ACCEPTED) for _ in range(3)))
        made, _ = client(script)
        made.send("jane", message="hi")
        made.send("jane", message="hi")
        made.send("jane", message="hi", idempotency_key="order-42")
        keys = [request.headers["Idempotency-Key"] for request in script.requests]
        assert keys[0] != keys[1] and keys[2] == "order-42"

    def test_delivery_first_is_sent_and_left_out_when_not_given(self) -> None:
        script = Script(httpx.Response(201, json={**ACCEPTED, "delivery": "first"}), httpx.Response(201, json=ACCEPTED))
        made, _ = client(script)
        accepted = made.send("jane", message="hi", channels=["sms", "email"], delivery="first")
        made.send("jane", message="hi")
        first, default = (json.loads(request.content) for request in script.requests)
        assert (first["delivery"], first["channels"], accepted.delivery) == ("first", ["sms", "email"], "first")
        assert "delivery" not in default

    @pytest.mark.parametrize("status", [429, 503])
    def test_retry_after_is_honoured(self, status: int) -> None:
        script = Script(error(status, "later", retry_after="2"), error(status, "later", retry_after="1"), httpx.Response(201, json=ACCEPTED))
        made, sleeps = client(script)
        made.send("jane", message="hi")
        assert sleeps == [2.0, 1.0]
        assert len({request.headers["Idempotency-Key"] for request in script.requests}) == 1

    def test_gives_up_after_max_attempts_with_the_servers_error(self) -> None:
        script = Script(*(error(503, "the database is unavailable", retry_after="1") for _ in range(3)))
        made, sleeps = client(script, retry=RetryPolicy(max_attempts=3))
        with pytest.raises(ServiceUnavailable) as raised:
            made.send("jane", message="hi")
        assert (raised.value.message, raised.value.retry_after, sleeps) == ("the database is unavailable", 1.0, [1.0, 1.0])

    def test_a_retry_after_beyond_the_policy_is_raised_at_once(self) -> None:
        script = Script(error(429, "rate limit exceeded", retry_after="120"))
        made, sleeps = client(script)
        with pytest.raises(RateLimited) as raised:
            made.get_recipient("jane")
        assert raised.value.retry_after == 120.0 and sleeps == []

    def test_connection_failures_until_the_end_raise_transport_error(self) -> None:
        script = Script(*(connection_refused() for _ in range(4)))
        made, sleeps = client(script)
        with pytest.raises(TransportError, match="cannot reach the gateway at https://gateway.test") as raised:
            made.list_recipients()
        assert isinstance(raised.value.__cause__, httpx.ConnectError) and len(sleeps) == 3


class TestWhatIsNotRetried:
    @pytest.mark.parametrize(
        ("status", "kind"), [(400, ValidationError), (422, ValidationError), (403, Forbidden), (404, NotFound), (409, Conflict)]
    )
    def test_refusals_raise_at_once_with_message_and_field(self, status: int, kind: type[Exception]) -> None:
        script = Script(error(status, "unknown recipient: 'x'", field="recipient"))
        made, sleeps = client(script)
        with pytest.raises(kind) as raised:
            made.send("x", message="hi")
        assert (raised.value.status, raised.value.message, raised.value.field) == (status, "unknown recipient: 'x'", "recipient")  # type: ignore[attr-defined]
        assert len(script.requests) == 1 and sleeps == []

    def test_rotating_the_secret_is_not_repeated_after_a_broken_connection(self) -> None:
        script = Script(connection_reset())
        made, _ = client(script)
        with pytest.raises(TransportError):
            made.rotate_callback_secret()
        assert len(script.requests) == 1

    def test_rotating_the_secret_is_retried_when_it_cannot_have_happened(self) -> None:
        created = {"url": "https://example.com/cb", "events": ["delivery.sent"], "secret": "whsec_x"}
        script = Script(connection_refused(), error(503, "unavailable", retry_after="0"), httpx.Response(200, json=created))
        made, _ = client(script)
        assert made.rotate_callback_secret().secret == "whsec_x"
        assert len(script.requests) == 3

    def test_a_tls_refusal_is_not_retried(self) -> None:
        refused = httpx.ConnectError("handshake")
        refused.__cause__ = ssl.SSLCertVerificationError("certificate verify failed")
        script = Script(refused)
        made, _ = client(script)
        with pytest.raises(TransportError):
            made.get_callback()
        assert len(script.requests) == 1


def notification(**statuses: str) -> dict[str, Any]:
    delivery = {"attempts": 1, "created_at": "2026-12-02T01:00:00Z", "updated_at": "2026-12-02T01:00:01Z"}
    return {
        **ACCEPTED,
        "channels": list(statuses),
        "client": "client",
        "published": True,
        "deliveries": {channel: {**delivery, "status": status, "last_error": "bounced" if status == "failed" else None} for channel, status in statuses.items()},
    }


class TestWaitFor:
    def test_waits_until_every_delivery_arrived(self) -> None:
        script = Script(*(httpx.Response(200, json=notification(**s)) for s in (
            {"sms": "pending", "email": "sending", "slack": "pending"},
            {"sms": "sent", "email": "delivered", "slack": "sent"},
            {"sms": "delivered", "email": "delivered", "slack": "sent"},
        )))
        made, sleeps = client(script)
        # Slack has no receipts: sent is as far as it goes.
        final = made.wait_for(ACCEPTED["id"], status="delivered", timeout=10, interval=0.2)
        assert final.deliveries["sms"].status == "delivered" and sleeps == [0.2, 0.2]

    def test_sent_is_reached_by_delivered_and_skipped_needs_nothing(self) -> None:
        script = Script(httpx.Response(200, json=notification(sms="delivered", email="skipped")))
        made, _ = client(script)
        assert made.wait_for(ACCEPTED["id"], status="sent").deliveries["email"].status == "skipped"

    def test_a_failed_delivery_raises(self) -> None:
        script = Script(httpx.Response(200, json=notification(sms="sent", email="failed")))
        made, _ = client(script)
        with pytest.raises(DeliveryFailed, match="email failed: bounced") as raised:
            made.wait_for(ACCEPTED["id"], status="sent")
        assert raised.value.channels == ["email"]

    def test_delivery_first_waits_for_the_channel_that_was_sent(self) -> None:
        first = {"delivery": "first"}
        script = Script(
            httpx.Response(200, json={**notification(sms="failed", email="pending"), **first}),
            httpx.Response(200, json={**notification(sms="failed", email="sent"), **first, "delivered_by": "email"}),
        )
        made, _ = client(script)
        final = made.wait_for(ACCEPTED["id"], status="sent", timeout=10, interval=0.1)
        assert (final.delivery, final.delivered_by) == ("first", "email")

    def test_delivery_first_raises_once_every_channel_ended_without_one_sent(self) -> None:
        script = Script(httpx.Response(200, json={**notification(sms="failed", email="failed"), "delivery": "first"}))
        made, _ = client(script)
        with pytest.raises(DeliveryFailed) as raised:
            made.wait_for(ACCEPTED["id"], status="sent")
        assert raised.value.channels == ["email", "sms"]

    def test_times_out(self) -> None:
        script = Script(*(httpx.Response(200, json=notification(sms="pending")) for _ in range(3)))
        made, _ = client(script)
        with pytest.raises(WaitTimeout, match="sms=pending"):
            made.wait_for(ACCEPTED["id"], status="sent", timeout=0)

    def test_only_sent_or_delivered(self) -> None:
        made, _ = client(Script())
        with pytest.raises(ValueError, match="'sent' or 'delivered'"):
            made.wait_for(ACCEPTED["id"], status="failed")


class TestIteration:
    def test_follows_next_cursor(self) -> None:
        pages = [
            {"items": [{"name": "a"}, {"name": "b"}], "next_cursor": "Yg"},
            {"items": [{"name": "c"}]},
        ]
        script = Script(*(httpx.Response(200, json=page) for page in pages))
        made, _ = client(script)
        assert [r.name for r in made.iter_recipients(limit=2)] == ["a", "b", "c"]
        assert [dict(request.url.params) for request in script.requests] == [{"limit": "2"}, {"limit": "2", "cursor": "Yg"}]


class TestAsyncClient:
    async def test_retries_with_the_same_key_and_iterates(self) -> None:
        script = Script(
            connection_reset(),
            error(503, "later", retry_after="1"),
            httpx.Response(201, json=ACCEPTED),
            httpx.Response(200, json={"items": [{"name": "a"}], "next_cursor": "YQ"}),
            httpx.Response(200, json={"items": [{"name": "b"}]}),
        )
        sleeps: list[float] = []

        async def sleep(seconds: float) -> None:
            sleeps.append(seconds)

        async with AsyncClient(
            "https://gateway.test", ssl_context=ssl.create_default_context(), transport=httpx.MockTransport(script)
        ) as made:
            made._sleep = sleep
            accepted = await made.send("jane", message="hi")
            names = [recipient.name async for recipient in made.iter_recipients()]
        assert str(accepted.id) == ACCEPTED["id"] and names == ["a", "b"]
        assert len({request.headers["Idempotency-Key"] for request in script.requests[:3]}) == 1
        assert len(sleeps) == 2 and sleeps[1] == 1.0




class TestModels:
    def test_a_status_a_newer_gateway_adds_is_kept_as_text(self) -> None:
        script = Script(httpx.Response(200, json=notification(sms="sent", email="bounced")))
        made, _ = client(script)
        read = made.get_notification(ACCEPTED["id"])
        assert read.deliveries["sms"].status is DeliveryStatus.SENT and read.deliveries["email"].status == "bounced"
