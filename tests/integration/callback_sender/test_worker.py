"""Status callbacks end to end: the gateway, the senders and ``python -m callback_sender`` as real
processes, and a real HTTPS receiver (``harness/webhook_receiver.py``, a certificate of its own
test CA, which the callback sender trusts through CALLBACKS_CA_BUNDLE) that verifies every
signature with the ``standardwebhooks`` package.

The callback sender here runs with a 2 s timeout, 0.5-2 s backoff and a 12 s lease (quicker
than production, for the tests' waits), a concurrency of 8 and at most 3 requests per client.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from harness.callback_sender import CallbackSenderProcess, callback_sender
from harness.gateway import GatewayProcess
from harness.slack import slack_error
from harness.system import System
from harness.waiting import wait_until
from harness.webhook_receiver import Received, Receiver

SENDER_SETTINGS = {"timeout_seconds": 2.0, "concurrency": 8, "max_in_flight_per_client": 3}
ALL_CHANNELS = ("sms", "email", "slack")


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    directory = tmp_path_factory.mktemp("receiver")
    server = Receiver(directory, tls=True, log_dir=directory).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sender(system: System, receiver: Receiver) -> Iterator[CallbackSenderProcess]:
    process = callback_sender(
        database_url=system.database_url,
        log_dir=system.log_dir,
        ca_bundle=receiver.ca_bundle,
        callbacks_allow_localhost=True,
        **SENDER_SETTINGS,
    ).start()
    yield process
    process.stop()


@pytest.fixture
def callbacks(system: System, receiver: Receiver, sender: CallbackSenderProcess) -> Iterator[Callbacks]:
    system.reset()
    if not receiver.process.running:
        receiver.start()
    if not sender.process.running:
        sender.start()
    helper = Callbacks(system, receiver)
    yield helper
    helper.remove_all()


class Callbacks:
    """The test's side: callbacks set per client certificate, notifications sent, events read back."""

    def __init__(self, system: System, receiver: Receiver) -> None:
        self.system = system
        self.receiver = receiver
        self.gateway: GatewayProcess = system.gateway  # type: ignore[assignment]
        self.secrets: dict[str, str] = {}
        self._set: set[str] = set()

    def http(self, client: str) -> httpx.Client:
        return self.gateway.client(client)

    def set(self, client: str, *, receiver_name: str | None = None, events: list[str] | None = None, **behaviour: object) -> str:
        """PUT /callbacks for ``client`` to a receiver path of its own; returns that path's name."""
        name = receiver_name or f"{client}-{uuid.uuid4().hex[:8]}"
        body: dict[str, object] = {"url": self.receiver.url(name)}
        if events is not None:
            body["events"] = events
        with self.http(client) as http:
            answer = http.put("/callbacks", json=body)
        assert answer.status_code == 200, answer.text
        secret = answer.json()["secret"]
        self.secrets[name] = secret
        self.receiver.configure(name, secret=secret, **behaviour)  # type: ignore[arg-type]
        self._set.add(client)
        return name

    def status(self, client: str) -> dict[str, object]:
        with self.http(client) as http:
            answer = http.get("/callbacks")
        assert answer.status_code == 200, answer.text
        return answer.json()

    def remove_all(self) -> None:
        for client in self._set:
            with self.http(client) as http:
                assert http.delete("/callbacks").status_code == 204

    def recipient(self, *, slack_id: str | None = None) -> str:
        name = f"cb-{uuid.uuid4().hex[:10]}"
        contacts = {"phone_number": "+14155552671", "email": f"{name}@example.com", "slack_id": slack_id or "U0CALLBACK1"}
        with self.http("client") as http:
            assert http.put(f"/recipients/{name}", json=contacts).status_code == 204
        return name

    def send(self, client: str, recipient: str, *, count: int = 1, gateway: GatewayProcess | None = None) -> list[str]:
        ids = []
        with (gateway or self.gateway).client(client) as http:
            for index in range(count):
                answer = http.post("/notifications", json={"recipient": recipient, "message": f"callback test {uuid.uuid4()} #{index}"})
                assert answer.status_code == 201, answer.text
                ids.append(answer.json()["id"])
        return ids

    def wait_final(self, ids: list[str], timeout: float = 60.0) -> dict[tuple[str, str], str]:
        """Every delivery of ``ids`` final; their statuses."""

        def final() -> dict[tuple[str, str], str] | None:
            rows = self.system.db.fetch(
                "SELECT notification_id::text AS id, channel, status FROM deliveries WHERE notification_id = ANY($1::uuid[])", ids
            )
            if len(rows) == len(ids) * len(ALL_CHANNELS) and all(row["status"] in ("sent", "failed") for row in rows):
                return {(row["id"], row["channel"]): row["status"] for row in rows}
            return None

        return wait_until(final, timeout=timeout, interval=0.3, what=f"{len(ids)} notifications' deliveries to be final")

    def wait_events(self, name: str, expected: int, *, timeout: float = 60.0, answered_ok: bool = True) -> list[Received]:
        """The events ``name``'s receiver took (answered 2xx unless ``answered_ok`` is False), once
        there are ``expected`` distinct ones."""

        def enough() -> list[Received] | None:
            received = [r for r in self.receiver.received(name) if not answered_ok or (r.answered and r.answered < 300)]
            return received if len({r.webhook_id for r in received}) >= expected else None

        return wait_until(enough, timeout=timeout, interval=0.3, what=f"{expected} callbacks at {name}")

    def pending(self, client: str) -> int:
        return int(self.status(client)["pending"])  # type: ignore[arg-type]


def _by_delivery(events: list[Received]) -> dict[tuple[str, str], Received]:
    return {(event.data["notification_id"], event.data["channel"]): event for event in events}


class TestSignedEvents:
    def test_every_status_change_arrives_signed_with_the_documented_payload(self, callbacks: Callbacks) -> None:
        name = callbacks.set("client")
        recipient = callbacks.recipient()
        [notification_id] = callbacks.send("client", recipient)
        statuses = callbacks.wait_final([notification_id])
        events = callbacks.wait_events(name, 3)

        assert all(event.verified for event in callbacks.receiver.received(name))
        assert {(e.data["notification_id"], e.data["channel"], e.type) for e in events} == {
            (notification_id, channel, f"delivery.{statuses[(notification_id, channel)]}") for channel in ALL_CHANNELS
        }
        with callbacks.http("client") as http:
            deliveries = http.get(f"/notifications/{notification_id}").json()["deliveries"]
        for (_, channel), event in _by_delivery(events).items():
            assert list(event.payload) == ["type", "timestamp", "data"]
            assert list(event.data) == [
                "notification_id", "channel", "status", "attempts", "last_error", "provider_message_id", "provider", "created_at", "sent_at"
            ]
            delivery = deliveries[channel]
            assert event.data["status"] == delivery["status"] == "sent"
            assert event.data["provider_message_id"] == delivery["provider_message_id"]
            assert event.data["provider"] == delivery["provider"]  # which of the channel's providers sent it
            assert event.data["attempts"] == delivery["attempts"]
            assert event.data["last_error"] is None
            assert event.payload["timestamp"].endswith("Z") and event.data["sent_at"].endswith("Z")
        assert callbacks.pending("client") == 0
        assert callbacks.status("client")["last_success_at"] is not None

    def test_a_failed_delivery_and_the_events_filter(self, callbacks: Callbacks) -> None:
        callbacks.system.slack.always("C0CBGONE99", slack_error(200, {"ok": False, "error": "channel_not_found"}))
        name = callbacks.set("client", events=["delivery.failed"])
        recipient = callbacks.recipient(slack_id="C0CBGONE99")
        [notification_id] = callbacks.send("client", recipient)
        statuses = callbacks.wait_final([notification_id])
        assert statuses[(notification_id, "slack")] == "failed"
        [event] = callbacks.wait_events(name, 1)
        assert event.type == "delivery.failed"
        assert event.data["channel"] == "slack" and "channel_not_found" in event.data["last_error"]
        # The sent ones had no event at all: nothing is pending, nothing else arrived.
        assert callbacks.system.db.fetch("SELECT count(*) AS n FROM callback_events WHERE client = 'client'")[0]["n"] == 0
        assert len(callbacks.receiver.received(name)) == 1

    def test_after_a_rotation_both_secrets_verify_until_the_grace_ends(self, callbacks: Callbacks) -> None:
        name = callbacks.set("client")
        old = callbacks.secrets[name]
        with callbacks.http("client") as http:
            rotated = http.post("/callbacks/rotate-secret")
        assert rotated.status_code == 200 and rotated.json()["secret"] != old
        # The receiver still has the old secret: verified, through the old secret's signature.
        [notification_id] = callbacks.send("client", callbacks.recipient())
        callbacks.wait_final([notification_id])
        events = callbacks.wait_events(name, 3)
        assert all(event.verified for event in events)
        assert all(len(event.signature.split(" ")) == 2 for event in events)


class TestRetries:
    def test_receiver_down_for_a_while_then_up_gets_every_event(self, callbacks: Callbacks) -> None:
        name = callbacks.set("client")
        recipient = callbacks.recipient()
        callbacks.receiver.stop()
        ids = callbacks.send("client", recipient, count=5)
        callbacks.wait_final(ids)
        # Refused connections meanwhile: retried, and GET /callbacks says so.
        failure = wait_until(lambda: callbacks.status("client")["last_failure"], timeout=30, what="a failed attempt")
        assert failure["will_retry"] is True  # type: ignore[index]
        assert callbacks.pending("client") == 15
        time.sleep(3)  # down a while longer: several attempts each
        callbacks.receiver.start()
        events = callbacks.wait_events(name, 15, timeout=60)
        assert {(e.data["notification_id"], e.data["channel"]) for e in events} == {(i, c) for i in ids for c in ALL_CHANNELS}
        assert all(event.verified for event in events)
        wait_until(lambda: callbacks.pending("client") == 0, timeout=20, what="nothing pending")
        attempts = callbacks.system.db.fetch("SELECT count(*) AS n FROM callback_events WHERE client = 'client'")[0]["n"]
        assert attempts == 0  # delivered events are deleted

    def test_a_4xx_is_not_retried_and_is_recorded(self, callbacks: Callbacks) -> None:
        name = callbacks.set("client", mode="status", status=400)
        [notification_id] = callbacks.send("client", callbacks.recipient())
        callbacks.wait_final([notification_id])
        status = wait_until(
            lambda: (s := callbacks.status("client"))["pending"] == 0 and s["last_failure"] and s,
            timeout=30,
            what="the events given up on",
        )
        assert status["last_failure"]["will_retry"] is False  # type: ignore[index]
        assert status["last_failure"]["error"].startswith("HTTP 400")  # type: ignore[index]
        rows = callbacks.system.db.fetch(
            "SELECT id::text AS id, attempts, given_up_at, last_error FROM callback_events WHERE notification_id = $1", uuid.UUID(notification_id)
        )
        assert len(rows) == 3 and all(row["attempts"] == 1 and row["given_up_at"] and row["last_error"].startswith("HTTP 400") for row in rows)
        time.sleep(3)  # longer than the whole backoff: still one request per event
        assert Counter(event.webhook_id for event in callbacks.receiver.received(name)) == Counter({row["id"]: 1 for row in rows})

    def test_429_retry_after_is_honoured(self, callbacks: Callbacks) -> None:
        name = callbacks.set("client", events=["delivery.sent"], mode="status", status=429, retry_after=3)
        [notification_id] = callbacks.send("client", callbacks.recipient())
        callbacks.wait_final([notification_id])
        callbacks.wait_events(name, 3, answered_ok=False)
        callbacks.receiver.configure(name, secret=callbacks.secrets[name], mode="ok")
        callbacks.wait_events(name, 3)
        by_id: dict[str, list[float]] = {}
        for event in callbacks.receiver.received(name):
            by_id.setdefault(event.webhook_id, []).append(event.received_at)
        for times in by_id.values():
            assert len(times) >= 2
            # The backoff alone would be 0.5-1 s; Retry-After said 3.
            assert all(later - earlier >= 2.9 for earlier, later in zip(times, times[1:]))


class TestCrashes:
    def test_callback_sender_and_gateway_killed_mid_delivery_still_deliver_every_event(
        self, callbacks: Callbacks, sender: CallbackSenderProcess
    ) -> None:
        name = callbacks.set("client", delay_seconds=1.5)  # slow: requests are under way when the kill comes
        recipient = callbacks.recipient()
        extra = callbacks.system.start_gateway(name="gateway-killed")
        ids = callbacks.send("client", recipient, count=6, gateway=extra)
        extra.process.kill()  # right after its last 201: the relay of the other gateway publishes the rest
        callbacks.wait_final(ids)
        # Requests under way in the sender (the receiver takes 1.5 s to answer each) when it dies.
        wait_until(lambda: sender.metrics().get(("callback_requests_in_flight", ()), 0) > 0, timeout=30, interval=0.05, what="callbacks under way")
        sender.process.kill()
        callbacks.receiver.configure(name, secret=callbacks.secrets[name], mode="ok")
        sender.start()
        events = callbacks.wait_events(name, 18, timeout=90)
        assert {(e.data["notification_id"], e.data["channel"]) for e in events} == {(i, c) for i in ids for c in ALL_CHANNELS}
        copies = Counter(event.webhook_id for event in events)
        duplicates = sum(count - 1 for count in copies.values())
        print(f"callback sender SIGKILLed mid-delivery: 18 events delivered, {duplicates} delivered twice (at least once)")
        assert all(event.verified for event in events)


def _in_flight(callbacks: Callbacks) -> bool:
    rows = callbacks.system.db.fetch("SELECT count(*) AS n FROM callback_events WHERE client = 'client' AND attempts > 0 AND given_up_at IS NULL")
    return rows[0]["n"] > 0


class TestIsolation:
    def test_a_dead_receiver_of_one_client_does_not_delay_another_clients_callbacks(self, callbacks: Callbacks) -> None:
        callbacks.set("client", mode="hang")
        healthy = callbacks.set("acme-billing")
        flooding = callbacks.send("client", callbacks.recipient(), count=20)  # 60 events to a receiver that never answers
        wait_until(lambda: _in_flight(callbacks), timeout=30, what="the dead receiver's callbacks under way")
        recipient = callbacks.recipient()
        measured: list[str] = []
        for _ in range(5):
            measured += callbacks.send("acme-billing", recipient)
            time.sleep(0.5)
        callbacks.wait_final(measured)
        events = callbacks.wait_events(healthy, 15, timeout=30)
        sent = {
            (row["id"], row["channel"]): row["t"]
            for row in callbacks.system.db.fetch(
                "SELECT notification_id::text AS id, channel, extract(epoch FROM updated_at)::float8 AS t FROM deliveries"
                " WHERE notification_id = ANY($1::uuid[])",
                measured,
            )
        }
        latencies = sorted(event.received_at - sent[(event.data["notification_id"], event.data["channel"])] for event in events)
        hanging = callbacks.pending("client")
        print(
            f"isolation: the other client's 15 callbacks arrived {statistics.median(latencies):.2f} s (median), "
            f"{latencies[-1]:.2f} s (max) after their status change, while {hanging} events of the dead receiver were pending"
        )
        assert hanging > 0
        assert latencies[-1] < 3.0, latencies
        # Deliveries went on as usual meanwhile: the flood's notifications are all sent.
        callbacks.wait_final(flooding)


class TestSendTimeRefusal:
    def test_an_address_refused_when_sending_is_given_up_on_and_never_connected_to(
        self, callbacks: Callbacks, sender: CallbackSenderProcess, system: System, receiver: Receiver
    ) -> None:
        # The gateway allowed the URL (https://localhost, CALLBACKS_ALLOW_LOCALHOST); the callback
        # sender now resolves it under stricter rules, as it would a host whose DNS changed.
        name = callbacks.set("client")
        sender.stop()
        strict = callback_sender(
            database_url=system.database_url, log_dir=system.log_dir, name="callback_sender-strict", ca_bundle=receiver.ca_bundle, **SENDER_SETTINGS
        ).start()
        try:
            [notification_id] = callbacks.send("client", callbacks.recipient())
            callbacks.wait_final([notification_id])
            status = wait_until(
                lambda: (s := callbacks.status("client"))["pending"] == 0 and s["last_failure"] and s, timeout=30, what="the events refused"
            )
        finally:
            strict.stop()
        error = status["last_failure"]["error"]  # type: ignore[index]
        assert error.startswith("refused: url's host localhost resolves to 127.0.0.1, a loopback address"), error
        assert status["last_failure"]["will_retry"] is False  # type: ignore[index]
        assert callbacks.receiver.received(name) == []
