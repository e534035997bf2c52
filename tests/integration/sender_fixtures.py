"""Fixtures and helpers for the sender integration tests (tests/integration/test_senders.py).

The senders' stack is their own: a fresh database on the session's Postgres server, a moto
server and a WireMock of their own (so no other test's queue reader competes for their
messages), and the senders as real processes (``python -m sender_slack``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.messages import NotificationMessage, RecipientSnapshot
from shared.topology import TOPIC_NAME, Channel, queues_for
from stack.components import ManagedProcess, MotoServer, WireMock, free_port, prepare_system, wait_for_http

REPO_ROOT = Path(__file__).resolve().parents[2]
SLACK_POST_PATH = "/api/chat.postMessage"
ENV_PREFIX = {Channel.SMS: "SMS_SENDER_", Channel.EMAIL: "EMAIL_SENDER_", Channel.SLACK: "SLACK_SENDER_"}

# Short enough that retries and the road to the DLQ take seconds, long enough that a busy test
# machine does not see messages reappear while they are being worked on.
TEST_RUNTIME_SETTINGS = {
    "VISIBILITY_TIMEOUT_SECONDS": "8",
    "HEARTBEAT_SECONDS": "2",
    "BACKOFF_BASE_SECONDS": "1",
    "BACKOFF_MAX_SECONDS": "2",
    "SEND_TIMEOUT_SECONDS": "5",
    "SHUTDOWN_GRACE_SECONDS": "15",
    "DELETE_FLUSH_SECONDS": "0.1",
    "RECEIVE_WAIT_SECONDS": "2",
}


def wait_until(condition: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.2, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or condition}")
        time.sleep(interval)


# ---------------------------------------------------------------- Postgres


class Database:
    """Synchronous access for tests; every call runs asyncpg in a thread with its own loop."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)

    def fetch(self, query: str, *args: Any) -> list[dict[str, Any]]:
        async def run() -> list[dict[str, Any]]:
            connection = await asyncpg.connect(self._dsn)
            try:
                return [dict(row) for row in await connection.fetch(query, *args)]
            finally:
                await connection.close()

        with concurrent.futures.ThreadPoolExecutor(1) as executor:
            return executor.submit(asyncio.run, run()).result()

    def insert_notifications(self, messages: list[NotificationMessage]) -> None:
        """What the gateway writes when it accepts notifications: one row each, plus one
        ``pending`` delivery per addressed channel, in one transaction."""

        async def run() -> None:
            connection = await asyncpg.connect(self._dsn)
            try:
                async with connection.transaction():
                    await connection.executemany(
                        "INSERT INTO notifications (id, recipient, phone_number, email, slack_id, message, subject,"
                        " channels, client, client_serial, created_at)"
                        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                        [
                            (
                                m.notification_id,
                                m.recipient.name,
                                m.recipient.phone_number,
                                m.recipient.email,
                                m.recipient.slack_id,
                                m.message,
                                m.subject,
                                [c.value for c in m.channels],
                                m.client,
                                "01",
                                m.created_at,
                            )
                            for m in messages
                        ],
                    )
                    await connection.executemany(
                        "INSERT INTO deliveries (notification_id, channel) VALUES ($1, $2)",
                        [(m.notification_id, c.value) for m in messages for c in m.channels],
                    )
            finally:
                await connection.close()

        with concurrent.futures.ThreadPoolExecutor(1) as executor:
            executor.submit(asyncio.run, run()).result()

    def deliveries(self, notification_id: uuid.UUID) -> dict[str, dict[str, Any]]:
        rows = self.fetch("SELECT * FROM deliveries WHERE notification_id = $1", notification_id)
        return {row["channel"]: row for row in rows}

    def delivery(self, notification_id: uuid.UUID, channel: Channel) -> dict[str, Any]:
        return self.deliveries(notification_id)[channel.value]

    def wait_for_status(
        self, notification_id: uuid.UUID, channel: Channel, status: str, *, timeout: float = 30.0
    ) -> dict[str, Any]:
        def settled() -> dict[str, Any] | None:
            row = self.delivery(notification_id, channel)
            return row if row["status"] == status else None

        return wait_until(settled, timeout=timeout, what=f"{channel.value} delivery of {notification_id} to be {status}")

    def wait_for_all(self, ids: list[uuid.UUID], channel: Channel, status: str, *, timeout: float = 60.0) -> None:
        def done() -> bool:
            rows = self.fetch(
                "SELECT count(*) AS n FROM deliveries WHERE notification_id = ANY($1) AND channel = $2 AND status = $3",
                ids,
                channel.value,
                status,
            )
            return rows[0]["n"] == len(ids)

        wait_until(done, timeout=timeout, interval=0.5, what=f"{len(ids)} {channel.value} deliveries to be {status}")


# ---------------------------------------------------------------- AWS (moto)


class Aws:
    """boto3 clients on the moto server, and the gateway's way of publishing."""

    def __init__(self, moto: MotoServer) -> None:
        kwargs = {
            "endpoint_url": moto.endpoint_url,
            "region_name": "us-east-1",
            "aws_access_key_id": "test",
            "aws_secret_access_key": "test",
        }
        self.moto = moto
        self.sns = boto3.client("sns", **kwargs)
        self.sqs = boto3.client("sqs", **kwargs)
        self.topic_arn = self.sns.create_topic(Name=TOPIC_NAME)["TopicArn"]

    def queue_url(self, name: str) -> str:
        return self.sqs.get_queue_url(QueueName=name)["QueueUrl"]

    def publish(self, message: NotificationMessage) -> None:
        self.sns.publish(
            TopicArn=self.topic_arn, Message=message.to_json(), MessageAttributes=message.sns_message_attributes()
        )

    def drain_all(self) -> None:
        """Delete every visible message of every queue (PurgeQueue is allowed once a minute)."""
        for channel in Channel:
            queues = queues_for(channel)
            for name in (queues.queue, queues.dead_letter_queue):
                url = self.queue_url(name)
                while messages := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                    "Messages"
                ):
                    self.sqs.delete_message_batch(
                        QueueUrl=url,
                        Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
                    )

    def queue_depth(self, name: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url(name),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def dead_letters(self, channel: Channel) -> list[dict[str, Any]]:
        """Everything in the channel's DLQ (read and left there: visibility 0)."""
        url = self.queue_url(queues_for(channel).dead_letter_queue)
        found: dict[str, dict[str, Any]] = {}
        for _ in range(5):
            messages = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=0,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            found.update((m["MessageId"], m) for m in messages)
        return list(found.values())

    def sent_sms(self, text: str) -> list[dict[str, Any]]:
        return [sms for sms in self.moto.sent_sms() if sms["message"] == text]

    def sent_emails(self, text: str) -> list[dict[str, Any]]:
        return [sent for sent in self.moto.sent_emails() if sent["body"] == text]


# ---------------------------------------------------------------- Slack (WireMock)


class Slack:
    def __init__(self, wiremock: WireMock) -> None:
        self.wiremock = wiremock

    def posts(self, *, channel: str | None = None, text: str | None = None) -> list[dict[str, Any]]:
        """chat.postMessage requests received (JSON bodies), oldest first, optionally filtered."""
        found = []
        for request in self.wiremock.requests():
            body = request["body"]
            if request["path"] != SLACK_POST_PATH or not isinstance(body, dict):
                continue
            if (channel is None or body.get("channel") == channel) and (text is None or body.get("text") == text):
                found.append({**body, "logged_at": request["logged_at"], "timestamp": _journal_time(request)})
        return found

    def respond(self, channel: str, responses: list[dict[str, Any]]) -> None:
        """Answer the next posts to ``channel`` with ``responses`` in turn (WireMock responses),
        then as usual (the file mapping)."""
        scenario = f"{channel}-{uuid.uuid4().hex[:8]}"
        for index, response in enumerate(responses):
            self.wiremock.add_mapping(
                {
                    "priority": 1,
                    "scenarioName": scenario,
                    "requiredScenarioState": "Started" if index == 0 else f"step-{index}",
                    "newScenarioState": f"step-{index + 1}",
                    "request": {
                        "method": "POST",
                        "urlPath": SLACK_POST_PATH,
                        "bodyPatterns": [{"matchesJsonPath": {"expression": "$.channel", "equalTo": channel}}],
                    },
                    "response": response,
                }
            )

    def always(self, channel_pattern: str, response: dict[str, Any]) -> None:
        """Answer every post to channels matching the regex with ``response``."""
        self.wiremock.add_mapping(
            {
                "priority": 2,
                "request": {
                    "method": "POST",
                    "urlPath": SLACK_POST_PATH,
                    "bodyPatterns": [{"matchesJsonPath": {"expression": "$.channel", "matches": channel_pattern}}],
                },
                "response": response,
            }
        )


def slack_ok(*, delay_ms: int = 0) -> dict[str, Any]:
    """A successful chat.postMessage answer, like the stack's file mapping, optionally slow."""
    response: dict[str, Any] = {
        "status": 200,
        "headers": {"Content-Type": "application/json; charset=utf-8"},
        "body": '{"ok": true, "channel": {{toJson (jsonPath request.body \'$.channel\')}}, '
        '"ts": "{{now format=\'unix\'}}.{{randomValue length=6 type=\'NUMERIC\'}}"}',
        "transformers": ["response-template"],
    }
    if delay_ms:
        response["fixedDelayMilliseconds"] = delay_ms
    return response


def slack_error(status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "status": status,
        "headers": {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
    }
    if body is not None:
        response["jsonBody"] = body
    return response


def _journal_time(request: dict[str, Any]) -> float | None:
    logged = request.get("logged_at")
    if not logged:
        return None
    return datetime.fromisoformat(logged.replace("Z", "+00:00")).timestamp()


# ---------------------------------------------------------------- sender processes


@dataclass
class SenderProcess:
    channel: Channel
    process: ManagedProcess
    ops_port: int
    env: dict[str, str] = field(default_factory=dict)
    # Started with non-default settings: not reused by Senders.ensure, stopped after its test.
    custom: bool = False

    @property
    def ops_url(self) -> str:
        return f"http://127.0.0.1:{self.ops_port}"

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        with urllib.request.urlopen(f"{self.ops_url}/metrics", timeout=5) as response:
            text = response.read().decode()
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.process.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    pass
        return lines


class Senders:
    """Starts sender processes against the test stack; stops whatever it started."""

    def __init__(self, *, database_url: str, aws: Aws, slack_api_url: str, log_dir: Path) -> None:
        self.database_url = database_url
        self.aws = aws
        self.slack_api_url = slack_api_url
        self.log_dir = log_dir
        self.running: list[SenderProcess] = []
        self._count = 0

    def start(self, channel: Channel, **overrides: str) -> SenderProcess:
        """A sender for ``channel``, ready; ``overrides`` are runtime settings without the prefix."""
        sender = self.launch(channel, **overrides)
        self.wait_ready(sender)
        return sender

    def start_many(self, count: int, channel: Channel, **overrides: str) -> list[SenderProcess]:
        """``count`` replicas, started together."""
        senders = [self.launch(channel, **overrides) for _ in range(count)]
        for sender in senders:
            self.wait_ready(sender)
        return senders

    def wait_ready(self, sender: SenderProcess) -> None:
        try:
            wait_for_http(f"{sender.ops_url}/readyz", timeout=30, process=sender.process)
        except BaseException:
            self.stop(sender)
            raise

    def launch(self, channel: Channel, **overrides: str) -> SenderProcess:
        self._count += 1
        prefix = ENV_PREFIX[channel]
        ops_port = free_port()
        runtime = {**TEST_RUNTIME_SETTINGS, "OPS_PORT": str(ops_port), **overrides}
        env = {
            "DATABASE_URL": self.database_url,
            "AWS_ENDPOINT_URL": self.aws.moto.endpoint_url,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            "SLACK_API_URL": self.slack_api_url,
            **{f"{prefix}{name}": value for name, value in runtime.items()},
        }
        name = f"sender_{channel.value}-{self._count}"
        process = ManagedProcess(
            name, [sys.executable, "-m", f"sender_{channel.value}"], env=env, cwd=REPO_ROOT,
            log_path=self.log_dir / f"{name}.log",
        ).start()
        sender = SenderProcess(channel=channel, process=process, ops_port=ops_port, env=env, custom=bool(overrides))
        self.running.append(sender)
        return sender

    def stop(self, sender: SenderProcess, timeout: float = 30.0) -> int | None:
        code = sender.process.stop(timeout)
        if sender in self.running:
            self.running.remove(sender)
        return code

    def stop_all(self) -> None:
        for sender in list(self.running):
            self.stop(sender)

    def ensure(self, *channels: Channel) -> dict[Channel, SenderProcess]:
        """Exactly one default-configured sender per channel (reusing running ones)."""
        found: dict[Channel, SenderProcess] = {}
        for sender in self.running:
            if sender.channel in channels and sender.channel not in found and not sender.custom:
                found[sender.channel] = sender
        for channel in channels:
            if channel not in found:
                found[channel] = self.launch(channel)
        for sender in found.values():
            self.wait_ready(sender)
        return found

    def only(self, *channels: Channel) -> dict[Channel, SenderProcess]:
        """Stop every sender not in ``channels`` (and every custom one); ensure those."""
        for sender in list(self.running):
            if sender.channel not in channels or sender.custom:
                self.stop(sender)
        return self.ensure(*channels)


# ---------------------------------------------------------------- notifications


def make_notification(
    *,
    channels: tuple[Channel, ...],
    name: str = "ada",
    phone_number: str | None = "+14155550100",
    email: str | None = "ada@example.com",
    slack_id: str | None = "C0ADA",
    subject: str | None = "Test notification",
    text: str | None = None,
) -> NotificationMessage:
    notification_id = uuid.uuid4()
    return NotificationMessage(
        notification_id=notification_id,
        recipient=RecipientSnapshot(name=name, phone_number=phone_number, email=email, slack_id=slack_id),
        message=text or f"Hello {name}, this is {notification_id}",
        subject=subject,
        channels=list(channels),
        client="sender-tests",
        created_at=datetime.now(UTC),
    )


@dataclass
class SenderStack:
    db: Database
    aws: Aws
    slack: Slack
    senders: Senders

    def accept(self, *messages: NotificationMessage) -> None:
        """Insert and publish, as the gateway does once it has accepted notifications."""
        self.db.insert_notifications(list(messages))
        for message in messages:
            self.aws.publish(message)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sender_stack(postgres_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SenderStack]:
    log_dir = tmp_path_factory.mktemp("sender-logs")
    database_url = postgres_server.create_database()
    moto = MotoServer(free_port(), log_path=log_dir / "moto.log").start()
    wiremock = WireMock(free_port(), log_path=log_dir / "wiremock.log").start()
    senders: Senders | None = None
    try:
        asyncio.run(
            prepare_system(
                database_url=database_url,
                aws_endpoint_url=moto.endpoint_url,
                certs_dir=tmp_path_factory.mktemp("sender-certs"),
            )
        )
        aws = Aws(moto)
        senders = Senders(database_url=database_url, aws=aws, slack_api_url=wiremock.slack_api_url, log_dir=log_dir)
        yield SenderStack(db=Database(database_url), aws=aws, slack=Slack(wiremock), senders=senders)
    finally:
        if senders is not None:
            senders.stop_all()
        wiremock.stop()
        moto.stop()
        postgres_server.drop_database(database_url)


@pytest.fixture
def stack(sender_stack: SenderStack) -> Iterator[SenderStack]:
    """The module's stack, with drained queues and WireMock's standard mappings at the start."""
    sender_stack.aws.drain_all()
    sender_stack.slack.wiremock.reset_mappings()
    yield sender_stack
    for sender in list(sender_stack.senders.running):
        if sender.custom:
            sender_stack.senders.stop(sender)
