"""Scheduled sends, quiet hours and cancelling, on real gateway processes, Postgres and SNS/SQS
on the moto server.

The module's gateways share a database of their own (the session's gateway would release these
notifications too, and the restart and replica tests count who released what). No sender runs:
``QueueReader`` takes the senders' place on the queues, so a delivery's ``updated_at`` stays the
moment the relay's claim released it (``scheduled`` -> ``pending``), which is compared with the
time asked for.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from zoneinfo import ZoneInfo

import httpx
import pytest

from harness.aws import QueueReader
from harness.gateway import Certificates, GatewayProcess, start_gateway
from harness.postgres import PostgresServer, fetch
from stack.moto import MotoServer
from stack.prepare import prepare_system

# What the issue asks of the release: p99 under 1 s after send_at (bench/scheduled.py measures
# it); here every release of a handful must be within it, and none early.
RELEASE_BOUND = timedelta(seconds=1)
PLUS_ONE = timezone(timedelta(hours=1))  # an offset other than UTC's, as clients send them


@pytest.fixture(scope="module")
def database(postgres_server: PostgresServer, moto: MotoServer, certificates: Certificates, prepared: dict[str, str]) -> Iterator[str]:
    with postgres_server.fresh_database() as url:
        asyncio.run(prepare_system(database_url=url, aws_endpoint_url=moto.endpoint_url, certs_dir=certificates.directory))
        yield url


@pytest.fixture(scope="module")
def start(database: str, certificates: Certificates, moto: MotoServer, log_dir: Path) -> Iterator[Callable[[str], GatewayProcess]]:
    """Starts gateways on the module's database; stops those still running at the end."""
    started: list[GatewayProcess] = []

    def start_one(name: str) -> GatewayProcess:
        started.append(
            start_gateway(certificates=certificates, database_url=database, aws_endpoint_url=moto.endpoint_url, log_dir=log_dir, name=name)
        )
        return started[-1]

    yield start_one
    for process in started:
        process.stop()


@pytest.fixture(scope="module")
def gateway_a(start: Callable[[str], GatewayProcess]) -> GatewayProcess:
    return start("gateway-scheduled-a")


@pytest.fixture
def client(gateway_a: GatewayProcess) -> Iterator[httpx.Client]:
    with gateway_a.client() as opened:
        yield opened


def recipient(client: httpx.Client, **preferences: Any) -> str:
    """A new recipient with a Slack id only (one queue per notification), and its preferences."""
    name = f"sched-{uuid.uuid4().hex[:10]}"
    assert client.put(f"/recipients/{name}", json={"slack_id": "U0123456789"}).status_code == 204
    if preferences:
        answer = client.put(f"/recipients/{name}/preferences", json=preferences)
        assert answer.status_code == 204, answer.text
    return name


def in_(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def send(client: httpx.Client, name: str, send_at: datetime | str | None = None, **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {"recipient": name, "message": f"scheduled {uuid.uuid4()}", **extra}
    if send_at is not None:
        body["send_at"] = send_at if isinstance(send_at, str) else send_at.isoformat()
    return client.post("/notifications", json=body)


def released_at(database: str, notification_id: str) -> datetime | None:
    """When the relay released the notification's Slack delivery (None: still scheduled)."""
    row = fetch(database, "SELECT status, updated_at FROM deliveries WHERE notification_id = $1", uuid.UUID(notification_id))[0]
    return None if row["status"] == "scheduled" else row["updated_at"]


class TestDurableAndExactlyOnce:
    def test_released_by_a_gateway_started_after_the_one_that_accepted_it_was_killed(
        self, start: Callable[[str], GatewayProcess], queues: QueueReader, database: str
    ) -> None:
        # First in the module: no other gateway runs on its database yet.
        doomed = start("gateway-scheduled-doomed")
        with doomed.client() as client:
            send_at = in_(3)
            accepted = send(client, recipient(client), send_at).json()
        doomed.process.kill()
        time.sleep(max(0.0, (send_at - datetime.now(UTC)).total_seconds()) + 1.5)
        assert queues.wait_for(accepted["id"], queues=1, timeout=0.5) == [] and released_at(database, accepted["id"]) is None
        start("gateway-scheduled-restarted")
        assert len(queues.wait_for(accepted["id"], queues=1, timeout=30)) == 1
        time.sleep(1)
        assert len(queues.wait_for(accepted["id"], queues=2, timeout=1)) == 1

    def test_exactly_once_with_several_replicas(self, start: Callable[[str], GatewayProcess], gateway_a: GatewayProcess, queues: QueueReader, database: str) -> None:
        replica_b = start("gateway-scheduled-b")
        ids: dict[str, datetime] = {}
        with gateway_a.client() as client_a, replica_b.client() as client_b:
            names = [recipient(client_a) for _ in range(4)]
            for index in range(40):
                send_at = in_(2 + index * 0.05)
                answer = send(client_a if index % 2 else client_b, names[index % 4], send_at)
                assert answer.status_code == 201, answer.text
                ids[answer.json()["id"]] = send_at
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(queues.seen.get(notification_id) for notification_id in ids):
            queues.drain()
            time.sleep(0.2)
        time.sleep(2)  # anything published twice has arrived by now
        queues.drain()
        assert Counter(len(queues.seen.get(notification_id, [])) for notification_id in ids) == Counter({1: len(ids)})
        late = {notification_id: released_at(database, notification_id) - send_at for notification_id, send_at in ids.items()}  # type: ignore[operator]
        assert all(timedelta(0) <= delay < RELEASE_BOUND for delay in late.values()), sorted(late.values())[-3:]
        replica_b.stop()


class TestScheduledSend:
    def test_scheduled_until_released_then_published_once_on_time(self, client: httpx.Client, queues: QueueReader, database: str) -> None:
        send_at = in_(3)
        answer = send(client, recipient(client), send_at.astimezone(PLUS_ONE))
        assert answer.status_code == 201, answer.text
        accepted = answer.json()
        assert datetime.fromisoformat(accepted["send_at"]) == datetime.fromisoformat(accepted["release_at"]) == send_at
        status = client.get(f"/notifications/{accepted['id']}").json()
        assert status["published"] is False
        assert status["deliveries"]["slack"]["status"] == "scheduled"
        assert datetime.fromisoformat(status["deliveries"]["slack"]["release_at"]) == send_at

        messages = queues.wait_for(accepted["id"], queues=1, timeout=15)
        assert [queue for queue, _, _ in messages] == ["slack_notifications"]
        released = released_at(database, accepted["id"])
        assert released is not None and timedelta(0) <= released - send_at < RELEASE_BOUND
        status = client.get(f"/notifications/{accepted['id']}").json()
        assert (status["deliveries"]["slack"]["status"], status["published"]) == ("pending", True)
        assert "release_at" not in status["deliveries"]["slack"] or status["deliveries"]["slack"]["release_at"] is None
        time.sleep(1)
        assert len(queues.wait_for(accepted["id"], queues=2, timeout=1)) == 1

    def test_up_to_60_s_late_is_sent_at_once(self, client: httpx.Client, queues: QueueReader) -> None:
        accepted = send(client, recipient(client), in_(-30)).json()
        assert "release_at" not in accepted and accepted["send_at"]
        assert client.get(f"/notifications/{accepted['id']}").json()["deliveries"]["slack"]["status"] == "pending"
        assert len(queues.wait_for(accepted["id"], queues=1)) == 1

    @pytest.mark.parametrize(
        ("send_at", "message"),
        [
            ("2026-12-02T09:00:00", "send_at needs a UTC offset"),
            (None, "send_at is in the past"),  # two minutes ago, below
            ("far", "send_at is more than 7 days ahead; the limit is 7 days"),
            ("next tuesday", "send_at must be an ISO 8601 date and time with a UTC offset, such as 2026-12-02T09:00:00+01:00"),
            (1767225600, "send_at must be an ISO 8601 date and time with a UTC offset, such as 2026-12-02T09:00:00+01:00"),
        ],
    )
    def test_validation_messages(self, client: httpx.Client, send_at: Any, message: str) -> None:
        value = {None: in_(-120).isoformat(), "far": (in_(0) + timedelta(days=7, minutes=1)).isoformat()}.get(send_at, send_at)
        answer = client.post("/notifications", json={"recipient": recipient(client), "message": "m", "send_at": value})
        assert (answer.status_code, answer.json()) == (400, {"message": message, "field": "send_at"})

    def test_a_replay_is_the_same_scheduled_notification(self, client: httpx.Client, database: str) -> None:
        name, send_at, key = recipient(client), in_(60).isoformat(), f"key-{uuid.uuid4()}"
        first = client.post("/notifications", json={"recipient": name, "message": "m", "send_at": send_at}, headers={"Idempotency-Key": key})
        again = client.post("/notifications", json={"recipient": name, "message": "m", "send_at": send_at}, headers={"Idempotency-Key": key})
        assert (first.status_code, again.status_code, again.headers.get("Idempotent-Replayed")) == (201, 201, "true")
        assert first.json() == again.json()
        other = client.post(
            "/notifications", json={"recipient": name, "message": "m", "send_at": in_(90).isoformat()}, headers={"Idempotency-Key": key}
        )
        assert other.status_code == 409
        assert fetch(database, "SELECT count(*) FROM notifications WHERE recipient = $1", name)[0]["count"] == 1


class TestCancel:
    def test_before_release_nothing_is_published(self, client: httpx.Client, queues: QueueReader, database: str) -> None:
        accepted = send(client, recipient(client), in_(2)).json()
        answer = client.post(f"/notifications/{accepted['id']}/cancel")
        assert answer.status_code == 200, answer.text
        assert answer.json()["deliveries"]["slack"]["status"] == "cancelled"
        assert fetch(database, "SELECT count(*) FROM outbox WHERE notification_id = $1", uuid.UUID(accepted["id"]))[0]["count"] == 0
        time.sleep(3)
        assert queues.wait_for(accepted["id"], queues=1, timeout=1) == []
        again = client.post(f"/notifications/{accepted['id']}/cancel")
        assert (again.status_code, again.json()["deliveries"]["slack"]["status"]) == (200, "cancelled")

    def test_cancels_racing_the_release_either_win_or_get_409(self, gateway_a: GatewayProcess, queues: QueueReader) -> None:
        """Cancels sent at the release time: each one cancelled is never published, each 409 is published once."""
        with gateway_a.client() as client:
            name, send_at = recipient(client), in_(2)
            ids = [send(client, name, send_at).json()["id"] for _ in range(30)]

        async def cancel_all() -> list[int]:
            # Spread from 0.3 s before the release time to 0.3 s after it: some come first.
            async with gateway_a.async_client() as http:
                await http.get(f"/notifications/{ids[0]}")  # the connection is up before it matters

                async def cancel(index: int, notification_id: str) -> int:
                    moment = send_at + timedelta(seconds=-0.3 + 0.6 * index / len(ids))
                    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))
                    return (await http.post(f"/notifications/{notification_id}/cancel")).status_code

                return list(await asyncio.gather(*(cancel(index, i) for index, i in enumerate(ids))))

        outcomes = dict(zip(ids, asyncio.run(cancel_all()), strict=True))
        assert set(outcomes.values()) <= {200, 409}
        time.sleep(2)
        queues.drain()
        published = {i: len(queues.seen.get(i, [])) for i in ids}
        assert published == {i: 0 if outcome == 200 else 1 for i, outcome in outcomes.items()}, outcomes

    def test_after_release_409(self, client: httpx.Client, queues: QueueReader) -> None:
        accepted = send(client, recipient(client), in_(1)).json()
        assert len(queues.wait_for(accepted["id"], queues=1)) == 1
        answer = client.post(f"/notifications/{accepted['id']}/cancel")
        assert (answer.status_code, answer.json()) == (409, {"message": "already released"})

    def test_one_sent_at_once_409(self, client: httpx.Client) -> None:
        accepted = send(client, recipient(client)).json()
        answer = client.post(f"/notifications/{accepted['id']}/cancel")
        assert (answer.status_code, answer.json()) == (409, {"message": "already released"})

    def test_unknown_and_another_clients_404(self, client: httpx.Client, gateway_a: GatewayProcess) -> None:
        accepted = send(client, recipient(client), in_(60)).json()
        unknown = client.post(f"/notifications/{uuid.uuid4()}/cancel")
        with gateway_a.client("acme-billing") as other:
            theirs = other.post(f"/notifications/{accepted['id']}/cancel")
        assert (unknown.status_code, theirs.status_code) == (404, 404)
        assert theirs.json()["message"] == f"no notification with id {accepted['id']}"
        assert client.get(f"/notifications/{accepted['id']}").json()["deliveries"]["slack"]["status"] == "scheduled"
        assert client.post(f"/notifications/{accepted['id']}/cancel").status_code == 200

    def test_the_status_callback_says_cancelled(self, client: httpx.Client, database: str) -> None:
        assert client.put("/callbacks", json={"url": "https://localhost:9/hook"}).status_code == 200
        try:
            accepted = send(client, recipient(client), in_(60)).json()
            assert client.post(f"/notifications/{accepted['id']}/cancel").status_code == 200
            events = fetch(database, "SELECT type, data FROM callback_events WHERE notification_id = $1", uuid.UUID(accepted["id"]))
            assert [event["type"] for event in events] == ["delivery.cancelled"]
        finally:
            client.delete("/callbacks")


class TestQuietHours:
    @staticmethod
    def window_around_now() -> tuple[dict[str, str], datetime]:
        """Quiet hours in Asia/Kathmandu (UTC+05:45) from an hour ago to an hour from now, and their end."""
        local = datetime.now(ZoneInfo("Asia/Kathmandu")).replace(second=0, microsecond=0)
        start, end = local - timedelta(hours=1), local + timedelta(hours=1)
        return {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M"), "timezone": "Asia/Kathmandu"}, end

    def test_held_until_the_window_ends_in_the_recipients_zone(self, client: httpx.Client) -> None:
        window, end = self.window_around_now()
        name = recipient(client, quiet_hours=window)
        accepted = send(client, name).json()
        assert datetime.fromisoformat(accepted["release_at"]) == end and "send_at" not in accepted
        status = client.get(f"/notifications/{accepted['id']}").json()
        assert status["deliveries"]["slack"]["status"] == "scheduled"
        assert datetime.fromisoformat(status["deliveries"]["slack"]["release_at"]) == end
        assert client.get(f"/recipients/{name}/preferences").json()["quiet_hours"] == window

    def test_critical_categories_are_not_held(self, client: httpx.Client, queues: QueueReader) -> None:
        window, _ = self.window_around_now()
        accepted = send(client, recipient(client, quiet_hours=window), category="security").json()
        assert "release_at" not in accepted
        assert len(queues.wait_for(accepted["id"], queues=1)) == 1

    def test_an_unknown_time_zone_is_a_400(self, client: httpx.Client) -> None:
        name = recipient(client)
        answer = client.put(f"/recipients/{name}/preferences", json={"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Atlantis"}})
        assert (answer.status_code, answer.json()["message"]) == (400, "unknown time zone: 'Europe/Atlantis'; give an IANA name such as Europe/Berlin")
