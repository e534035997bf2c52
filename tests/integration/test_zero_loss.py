"""Zero loss under faults (issue 6): thousands of notifications through the whole system while
it is being broken, then an account of every one of them.

What runs, all of it this module's own: the gateway (a real process, mutual TLS), two replicas
of each sender, an embedded Postgres, moto and WireMock. ``ZERO_LOSS_NOTIFICATIONS`` (default
2,000) notifications are posted over HTTPS at a steady ``ZERO_LOSS_POST_RATE`` per second, at
most 32 in flight, to many recipients that each have all three channels, while:

- **senders die**: every ``ZERO_LOSS_KILL_INTERVAL`` seconds one sender replica gets SIGKILL
  (rotating sms, email, slack, over both replicas) and is started again a moment later;
- **providers fail 10% of sends** with a 5xx: the senders reach moto (SNS SMS, SES) and
  WireMock (Slack, and Twilio, the SMS sender's second provider: ``SMS_SENDER_PROVIDERS=sns,twilio``)
  through ``harness/http_fault_proxy.py``, which answers 10% of SMS publishes, SendEmails,
  chat.postMessages and Twilio create-message calls itself with a 500 and forwards everything
  else (SQS included) verbatim;
- **the primary SMS provider is down for 30 s**: the proxy in front of moto fails every SNS SMS
  publish (SES keeps working); the SMS senders' breakers open and the traffic moves to Twilio,
  and back to SNS once it recovers and the breakers' cool-down has let a probe through (both
  checked on the proxies' record of which provider took each SMS, and on ``deliveries.provider``);
- **SNS is unreachable for the gateway for 30 s**: its AWS endpoint is a ``FaultProxy``, cut and
  restored; every POST made meanwhile must still be answered 201 (the outbox keeps them);
- **Postgres restarts once**: ``pg_ctl stop -m fast``, a pause, start again on the same data
  directory; every service must reconnect on its own. Clients retry their 503s with the same
  ``Idempotency-Key``, as a careful client would.
- **Scheduled notifications** are part of the load: every ``ZERO_LOSS_SCHEDULED_EVERY``-th
  notification (default 10th) is posted with a ``send_at`` 2 to 20 s ahead, so the gateway's
  outbox relay releases it (through the SNS outage and the Postgres restart, as any other); each
  must be released once (accounted as the others are) and none sent before its ``send_at``.
- **Receipts**: once every delivery is settled, a Delivery event (as SES publishes it) for each
  sent email is published to ``email_events`` twice, and an SNS SMS delivery status record
  (SUCCESS) for each SMS SNS sent is written to the emulator's CloudWatch Logs, while an email
  sender replica (whose process also consumes the events) and an SMS sender replica (whose process
  also reads the delivery logs, ``sender_sms/delivery_logs.py``) get SIGKILL every half
  ``ZERO_LOSS_KILL_INTERVAL``: every one must end ``delivered`` with exactly one receipt (a
  restarted log reader reads its overlap again; an event consumed by a killed process comes back).
- **Status callbacks** go to a receiver (``harness/webhook_receiver.py``, a process) that answers
  10% of them with a 500, through two callback sender replicas, one of which gets SIGKILL every
  ``ZERO_LOSS_CALLBACK_KILL_INTERVAL`` seconds and is started again a moment later.

One post in ten is an item of a batch: every ``BATCH_EVERY`` posts, the first ``BATCH_SIZE`` go
as one ``POST /notifications/batch`` (one Idempotency-Key for the batch, retried as a whole), so
the bulk lane (the channels' ``_bulk_notifications`` queues and the senders' bulk consumers)
takes its share of every fault.

Then, for every accepted notification (every 201, a batch item's included) and each of its channels, the delivery must be
``sent`` (and the provider must have it) or dead-lettered (``failed`` "gave up after ..." or in
the channel's DLQ): 0 lost. And the receiver must have had, signed and verified, the event of
every delivery's final status (at least once: the copies a SIGKILL caused are counted).

Duplicates are counted where they land, per (notification, channel): moto's sent SMS and
emails, WireMock's journal of chat.postMessage. Each extra copy is traced, through the fault
proxies' record of when the provider took a call and from which TCP connection, to its cause:
a call made by a sender that got SIGKILL within seconds of it is the window the README owns up
to (the provider took it, the process died before recording ``sent``; or died with the call
under way, which the provider still completed), and no claim can close it. Those are reported
(about four per SIGKILL of a busy sender); every other duplicate is one the claims should have
prevented, and those must stay at most 0.1% of the deliveries. Beside each SIGKILL the summary
prints the provider calls the victim had under way (started, not yet answered, by the proxies'
clocks) and the duplicates that kill caused: without an idempotency key at the providers, the
sends in flight at a kill are the floor of what it can double.

moto runs with two fixes to its SQS (``stack/patched_moto.py``): stock moto loses a
message now and then under concurrent sends and deletes, and slows down with queue depth until
the backlog of the SNS outage stalls it.

The figures (total time, accepted/s, delivered/s, duplicates and their causes, dead letters,
injected failures, queue depths, CPU seconds per component) go to ``zero_loss_summary.json`` in
the test's tmp dir and are printed, with or without ``-s``. The full size, about ten minutes on
two cores::

    ZERO_LOSS_NOTIFICATIONS=10000 .venv/bin/python -m pytest tests/integration/test_zero_loss.py -q
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import secrets
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import httpx
import psutil
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shared.topology import ALL_QUEUES, Channel
from harness.aws import Aws
from harness.callback_sender import CallbackSenderProcess, callback_sender
from harness.fault_proxy import FaultProxy
from harness.gateway import Certificates, GatewayProcess, start_gateway
from harness.http_fault_proxy import HttpFaultProxy
from harness.postgres import execute, run_in_thread
from harness.senders import TEST_RUNTIME_SETTINGS, SenderProcess, sender_environment, sender_process
from harness.slack import SLACK_POST_PATH
from harness.sms_delivery_logs import sms_record
from harness.twilio import MESSAGES_PATH as TWILIO_MESSAGES_PATH
from harness.webhook_receiver import Receiver
from stack.moto import MotoServer
from stack.network import free_port, wait_for_http
from stack.postgres import EmbeddedPostgres
from stack.prepare import prepare_system
from stack.processes import ComponentError
from stack.wiremock_server import WireMock
CHANNELS = (Channel.SMS, Channel.EMAIL, Channel.SLACK)


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


@dataclass(frozen=True)
class Plan:
    """How big the run is and when each fault strikes (seconds after the first POST)."""

    notifications: int
    post_rate: float
    in_flight: int
    recipients: int
    replicas: int
    kill_interval: float
    restart_delay: float
    failure_rate: float
    sns_cut_at: float
    sns_cut_seconds: float
    postgres_restart_at: float
    postgres_down_seconds: float
    settle_timeout: float
    max_duplicate_rate: float
    callback_kill_interval: float
    callback_settle_timeout: float
    scheduled_every: int
    sms_outage_at: float
    sms_outage_seconds: float
    breaker_cooldown_seconds: float
    job_rows: int

    @property
    def posting_seconds(self) -> float:
        return self.notifications / self.post_rate

    @classmethod
    def from_environment(cls) -> Plan:
        notifications = int(_env_number("ZERO_LOSS_NOTIFICATIONS", 2000))
        post_rate = _env_number("ZERO_LOSS_POST_RATE", 20)
        posting = notifications / post_rate
        sns_cut_at = min(10.0, posting * 0.1)
        sns_cut_seconds = 30.0
        # After SNS is back (the two faults are told apart), and mid-run on long runs.
        postgres_restart_at = max(sns_cut_at + sns_cut_seconds + 5, posting / 2)
        postgres_down_seconds = _env_number("ZERO_LOSS_POSTGRES_DOWN_SECONDS", 2)
        return cls(
            notifications=notifications,
            post_rate=post_rate,
            in_flight=32,
            recipients=min(notifications, 250),
            replicas=2,
            kill_interval=_env_number("ZERO_LOSS_KILL_INTERVAL", 5),
            restart_delay=1.0,
            failure_rate=0.1,
            sns_cut_at=sns_cut_at,
            sns_cut_seconds=sns_cut_seconds,
            postgres_restart_at=postgres_restart_at,
            postgres_down_seconds=postgres_down_seconds,
            settle_timeout=_env_number("ZERO_LOSS_SETTLE_TIMEOUT", 120 + notifications * 0.03),
            max_duplicate_rate=0.001,
            callback_kill_interval=_env_number("ZERO_LOSS_CALLBACK_KILL_INTERVAL", 20),
            callback_settle_timeout=_env_number("ZERO_LOSS_CALLBACK_SETTLE_TIMEOUT", 90 + notifications * 0.03),
            scheduled_every=int(_env_number("ZERO_LOSS_SCHEDULED_EVERY", 10)),
            # After the Postgres restart, with posting time left to see the traffic come back.
            sms_outage_at=postgres_restart_at + postgres_down_seconds + 3,
            sms_outage_seconds=30.0,
            # Short, so that SNS takes its traffic back seconds after it recovers (production: 30 s).
            breaker_cooldown_seconds=5.0,
            # A CSV job among the load: its rows go out on the bulk lane, released by the relay.
            job_rows=int(_env_number("ZERO_LOSS_JOB_ROWS", 50)),
        )


PLAN = Plan.from_environment()

# Set-up + posting (bounded) + settling (bounded) + the analysis, with room for a slow machine.
pytestmark = pytest.mark.timeout(int(150 + PLAN.posting_seconds + 90 + PLAN.settle_timeout + PLAN.callback_settle_timeout + 150))

# The senders' settings: the sender tests' short timings, no rate limit worth the name (the
# recipients are many, and the limit is not what this test is about).
SENDER_SETTINGS = {
    **TEST_RUNTIME_SETTINGS,
    # The production default: moto on a busy machine can take seconds to answer, and a timeout
    # is an ambiguous failure (the provider may have sent it), so a short one only makes
    # duplicates that are the emulator's, not the system's.
    "SEND_TIMEOUT_SECONDS": "10",
    # One long poll per process: moto wakes every waiting ReceiveMessage on each new message
    # and each rescans the queue, so more pollers cost the emulator more than they bring.
    "RECEIVERS": "1",
    "RATE_LIMIT_PER_SECOND": "1000",
    "RATE_LIMIT_BURST": "1000",
    "BREAKER_COOLDOWN_SECONDS": str(PLAN.breaker_cooldown_seconds),
}
# The SMS sender's own: Twilio behind SNS, and its delivery-log reader polling every 2 s (the
# default 10 s would make the receipts phase wait for it), reading 30 s back after a restart.
SMS_SENDER_SETTINGS = {
    "PROVIDERS": "sns,twilio",
    "DELIVERY_LOGS_POLL_SECONDS": "2",
    "DELIVERY_LOGS_OVERLAP_SECONDS": "30",
}


# ---------------------------------------------------------------- the system under test


@dataclass
class Kill:
    at: float  # unix time
    sender: str
    channel: str
    ports: list[int]  # the victim's TCP ports: which provider calls were its own
    frozen_at: float = 0.0  # unix time it was suspended: from then on it answered nothing


class SenderFleet:
    """``replicas`` sender processes per channel, on the fault proxies; the test kills them."""

    def __init__(
        self, *, database_url: str, aws_endpoint_url: str, slack_api_url: str, twilio_base_url: str, log_dir: Path, replicas: int
    ) -> None:
        self.senders = [
            self._create(channel, replica, database_url, aws_endpoint_url, slack_api_url, twilio_base_url, log_dir)
            for replica in range(1, replicas + 1)
            for channel in CHANNELS
        ]
        self.kills: Counter[str] = Counter()

    @staticmethod
    def _create(
        channel: Channel, replica: int, database_url: str, aws_endpoint_url: str, slack_api_url: str, twilio_base_url: str, log_dir: Path
    ) -> SenderProcess:
        ops_port = free_port()
        own = {**SMS_SENDER_SETTINGS, "TWILIO_BASE_URL": twilio_base_url} if channel is Channel.SMS else {}
        env = sender_environment(
            channel,
            database_url=database_url,
            aws_endpoint_url=aws_endpoint_url,
            slack_api_url=slack_api_url,
            runtime={**SENDER_SETTINGS, **own, "OPS_PORT": str(ops_port)},
        )
        return sender_process(channel, f"sender_{channel.value}-{replica}", env, ops_port=ops_port, log_dir=log_dir, custom=True)

    def start_all(self) -> None:
        for sender in self.senders:
            sender.process.start()
        for sender in self.senders:
            wait_for_http(f"{sender.ops_url}/readyz", timeout=60, process=sender.process)

    def kill(self, sender: SenderProcess) -> Kill:
        """SIGKILL; returns what the duplicate accounting needs to know about the victim."""
        ports: list[int] = []
        frozen_at = time.time()
        with contextlib.suppress(psutil.Error, TypeError, ProcessLookupError):
            victim = psutil.Process(sender.process.pid)
            # Frozen first, so that no connection opens between the look at its sockets and the kill.
            victim.suspend()
            frozen_at = time.time()
            ports = sorted({connection.laddr.port for connection in victim.net_connections(kind="tcp")})
        sender.process.kill()
        self.kills[sender.channel.value] += 1
        return Kill(at=time.time(), sender=sender.process.name, channel=sender.channel.value, ports=ports, frozen_at=frozen_at)

    def ensure_running(self) -> None:
        # From the main thread: a child dies with the thread that started it (PR_SET_PDEATHSIG).
        for sender in self.senders:
            if not sender.process.running:
                sender.process.start()

    def stop_all(self) -> None:
        with concurrent.futures.ThreadPoolExecutor(len(self.senders)) as executor:
            list(executor.map(lambda sender: sender.process.stop(20), self.senders))

    def log_tails(self, lines: int = 12) -> str:
        return "\n".join(f"--- {s.process.name} (pid {s.process.pid}):\n{s.process.log_tail(lines)}" for s in self.senders)


@dataclass
class ChaosStack:
    postgres: EmbeddedPostgres
    database_url: str
    moto: MotoServer
    wiremock: WireMock
    aws_proxy: HttpFaultProxy
    wiremock_proxy: HttpFaultProxy
    sns_proxy: FaultProxy
    gateway: GatewayProcess
    fleet: SenderFleet
    log_dir: Path
    receiver: Receiver
    callback_senders: list[CallbackSenderProcess]

    def sqs(self) -> Any:
        """SQS on moto directly (not through any fault), for the test's own reads."""
        return boto3.client(
            "sqs",
            endpoint_url=self.moto.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"}),
        )


@pytest.fixture(scope="module")
def chaos(certificates: Certificates, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosStack]:
    log_dir = tmp_path_factory.mktemp("zero-loss-logs")
    # Not under pytest's temp dir (0700 for root): pgserver runs Postgres as its own user.
    parent = Path(tempfile.mkdtemp(prefix="notify-zero-loss-pg-"))
    parent.chmod(0o755)
    postgres = EmbeddedPostgres(parent / "data")
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, parent, ignore_errors=True)
        cleanup.callback(postgres.stop)
        # Stock moto loses messages under concurrent sends and deletes, and slows down with queue
        # depth until an SNS outage's backlog stalls it: see stack/patched_moto.py.
        moto = MotoServer(free_port(), log_path=log_dir / "moto.log", patched=True).start(wait=False)
        cleanup.callback(moto.stop)
        # Slack's posts and Twilio's share of the SMS (all of them during the SNS SMS outage).
        journal = int(PLAN.notifications * 2 * (1 + 2 * PLAN.failure_rate)) + 5_000
        wiremock = WireMock(free_port(), log_path=log_dir / "wiremock.log", max_journal_entries=journal).start(wait=False)
        cleanup.callback(wiremock.stop)

        database_url = postgres.start()
        # Six senders and the gateway, each with a pool of up to 20, exceed the default 100.
        execute(database_url, "ALTER SYSTEM SET max_connections = 300")
        postgres.stop()
        postgres.start()
        moto.wait_until_ready()
        wiremock.wait_until_ready()
        run_in_thread(prepare_system(database_url=database_url, aws_endpoint_url=moto.endpoint_url, certs_dir=certificates.directory))

        aws_proxy = HttpFaultProxy(
            upstream=moto.endpoint_url, rule="aws", failure_rate=PLAN.failure_rate, log_path=log_dir / "aws-fault-proxy.log", seed=6
        ).start()
        cleanup.callback(aws_proxy.stop)
        wiremock_proxy = HttpFaultProxy(
            upstream=wiremock.base_url, rule="slack,twilio", failure_rate=PLAN.failure_rate, log_path=log_dir / "wiremock-fault-proxy.log", seed=7
        ).start()
        cleanup.callback(wiremock_proxy.stop)
        sns_proxy = FaultProxy(upstream_host="127.0.0.1", upstream_port=moto.port).start()
        cleanup.callback(sns_proxy.stop)

        gateway = start_gateway(
            certificates=certificates,
            database_url=database_url,
            aws_endpoint_url=f"http://127.0.0.1:{sns_proxy.port}",
            log_dir=log_dir,
            name="gateway-zero-loss",
        )
        cleanup.callback(gateway.process.stop)
        fleet = SenderFleet(
            database_url=database_url,
            aws_endpoint_url=aws_proxy.url,
            slack_api_url=f"{wiremock_proxy.url}/api/",
            twilio_base_url=wiremock_proxy.url,
            log_dir=log_dir,
            replicas=PLAN.replicas,
        )
        cleanup.callback(fleet.stop_all)
        fleet.start_all()
        receiver = Receiver(log_dir / "receiver", tls=False, log_dir=log_dir).start()
        cleanup.callback(receiver.stop)
        callback_senders = [
            callback_sender(database_url=database_url, log_dir=log_dir, name=f"callback_sender-{replica}", callbacks_allow_localhost=True)
            for replica in (1, 2)
        ]
        for process in callback_senders:
            cleanup.callback(process.stop)
            process.start()
        yield ChaosStack(
            postgres, database_url, moto, wiremock, aws_proxy, wiremock_proxy, sns_proxy, gateway, fleet, log_dir, receiver, callback_senders
        )


# ---------------------------------------------------------------- posting


@dataclass
class Attempt:
    started: float  # seconds after the first POST
    ended: float
    outcome: int | str  # the HTTP status, or the transport error's name


@dataclass
class Posted:
    index: int
    text: str  # unique: how the notification is recognised at the providers
    idempotency_key: str
    notification_id: str | None = None
    replayed: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    refusal: str | None = None
    schedule_in: float | None = None  # seconds after its first POST it is to be sent (send_at)
    send_at: datetime | None = None  # fixed at the first POST; its retries ask for the same


def retry_delay(response: httpx.Response | None) -> float:
    # Honour Retry-After, but keep the steady pace: a second at most.
    if response is not None and (value := response.headers.get("Retry-After")):
        with contextlib.suppress(ValueError):
            return min(max(float(value), 0.1), 1.0)
    return 0.5


@dataclass
class Posting:
    """A POST made until it got an answer worth keeping: its attempts, and the last answer."""

    attempts: list[Attempt]
    response: httpx.Response | None = None  # the success (``expected``) when there was one
    refusal: str | None = None


async def post_until_answered(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], key: str, *, expected: int, t0: float, give_up_after: float
) -> Posting:
    """POST until ``expected``, retrying 5xx and transport errors with the same Idempotency-Key."""
    posting = Posting(attempts=[])
    deadline = time.monotonic() + give_up_after
    while True:
        started = time.monotonic() - t0
        response: httpx.Response | None = None
        try:
            response = await client.post(path, json=body, headers={"Idempotency-Key": key})
            outcome: int | str = response.status_code
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
        posting.attempts.append(Attempt(started, time.monotonic() - t0, outcome))
        if outcome == expected:
            posting.response = response
            return posting
        if isinstance(outcome, int) and 400 <= outcome < 500 and outcome not in (408, 429):
            posting.refusal = f"HTTP {outcome}: {response.text[:300] if response is not None else ''}"
            return posting
        if time.monotonic() > deadline:
            posting.refusal = f"no {expected} within {give_up_after:g} s; last: {outcome}"
            return posting
        await asyncio.sleep(retry_delay(response))


async def post_one(client: httpx.AsyncClient, posted: Posted, recipient: str, t0: float, give_up_after: float) -> None:
    """POST until a 201, retrying 5xx and transport errors with the same Idempotency-Key."""
    posting = await post_until_answered(
        client, "/notifications", notification_body(posted, recipient), posted.idempotency_key, expected=201, t0=t0, give_up_after=give_up_after
    )
    posted.attempts, posted.refusal = posting.attempts, posting.refusal
    if posting.response is not None:
        posted.notification_id = posting.response.json()["id"]
        posted.replayed = posting.response.headers.get("Idempotent-Replayed") == "true"


# Every BATCH_EVERY posts, the first BATCH_SIZE are the items of one batch.
BATCH_EVERY, BATCH_SIZE = 100, 10


def notification_body(posted: Posted, recipient: str) -> dict[str, Any]:
    body: dict[str, Any] = {"recipient": recipient, "message": posted.text, "subject": "Zero-loss run"}
    if posted.schedule_in is not None:
        posted.send_at = posted.send_at or datetime.now(UTC) + timedelta(seconds=posted.schedule_in)
        body["send_at"] = posted.send_at.isoformat()
    return body


async def post_batch(client: httpx.AsyncClient, batch: list[Posted], recipients: list[str], t0: float, give_up_after: float) -> None:
    """POST the batch until a 200, retrying 5xx and transport errors with the batch's Idempotency-Key;
    each item's result decides its post (201: its id; another status: its refusal)."""
    body = {"notifications": [notification_body(posted, recipients[posted.index % len(recipients)]) for posted in batch]}
    posting = await post_until_answered(
        client, "/notifications/batch", body, f"{batch[0].idempotency_key}-batch", expected=200, t0=t0, give_up_after=give_up_after
    )
    results = posting.response.json()["results"] if posting.response is not None else [None] * len(batch)
    for posted, result in zip(batch, results, strict=True):
        posted.attempts = list(posting.attempts)
        if result is None:
            posted.refusal = posting.refusal
            continue
        # The last attempt as a single POST's would be: the item's own status (201, or its refusal).
        last = posted.attempts[-1]
        posted.attempts[-1] = Attempt(last.started, last.ended, result["status"])
        if result["status"] == 201:
            posted.notification_id = result["id"]
            posted.replayed = posting.response.headers.get("Idempotent-Replayed") == "true"  # type: ignore[union-attr]
        else:
            posted.refusal = f"item HTTP {result['status']}: {result.get('message', '')}"


async def post_all(client: httpx.AsyncClient, posts: list[Posted], recipients: list[str], t0: float) -> None:
    """At a steady rate, at most ``in_flight`` at once (a slow gateway slows the pace)."""
    slots = asyncio.Semaphore(PLAN.in_flight)
    tasks: list[asyncio.Task[None]] = []
    try:
        await _post_paced(client, posts, recipients, t0, slots, tasks)
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for posted in posts:
            if posted.notification_id is None and posted.refusal is None:
                posted.refusal = "still unanswered at the posting deadline" if posted.attempts else "never sent"


async def _post_paced(
    client: httpx.AsyncClient,
    posts: list[Posted],
    recipients: list[str],
    t0: float,
    slots: asyncio.Semaphore,
    tasks: list[asyncio.Task[None]],
) -> None:
    for posted in posts:
        if 0 < posted.index % BATCH_EVERY < BATCH_SIZE:
            continue  # an item of the batch posted with the first of them
        delay = t0 + posted.index / PLAN.post_rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await slots.acquire()
        if posted.index % BATCH_EVERY == 0:
            batch = posts[posted.index : posted.index + BATCH_SIZE]
            task = asyncio.create_task(post_batch(client, batch, recipients, t0, 60.0))
        else:
            task = asyncio.create_task(post_one(client, posted, recipients[posted.index % len(recipients)], t0, 60.0))
        task.add_done_callback(lambda _task: slots.release())
        tasks.append(task)


def phone_number(recipient: int) -> str:
    return f"+1415555{recipient:04d}"


async def register_recipients(client: httpx.AsyncClient, run_id: str) -> list[str]:
    async def put(index: int) -> str:
        name = f"zl-{run_id}-{index:04d}"
        contacts = {"phone_number": phone_number(index), "email": f"zl{index}@example.com", "slack_id": f"UZL{index:06d}"}
        for attempt in range(5):  # PUT is idempotent; a busy machine drops a connection now and then
            try:
                response = await client.put(f"/recipients/{name}", json=contacts)
            except httpx.TransportError:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.5)
                continue
            assert response.status_code == 204, response.text
            return name
        raise AssertionError("unreachable")

    names: list[str] = []
    for start in range(0, PLAN.recipients, PLAN.in_flight):
        names += await asyncio.gather(*(put(i) for i in range(start, min(start + PLAN.in_flight, PLAN.recipients))))
    return names


async def post_job(client: httpx.AsyncClient, run_id: str, recipients: list[str]) -> tuple[str, list[str]]:
    """A CSV job of ``PLAN.job_rows`` rows to registered recipients, posted before the faults
    begin (POST /jobs takes no Idempotency-Key, so it is posted once): its id and the rows' texts."""
    template = f"zl-job-{run_id}"
    content = {"sms": "((text))", "email": {"subject": "Zero-loss job", "body": "((text))"}, "slack": "((text))"}
    assert (await client.put(f"/templates/{template}", json=content)).status_code == 201
    texts = [f"zero-loss {run_id} job #{row:05d}" for row in range(PLAN.job_rows)]
    lines = ["recipient,text", *(f"{recipients[row % len(recipients)]},{text}" for row, text in enumerate(texts))]
    response = await client.post(
        "/jobs", params={"template": template, "name": f"zero-loss {run_id}"}, content="\n".join(lines), headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"], texts


async def job_posts(system: ChaosStack, job_id: str, texts: list[str]) -> list[Posted]:
    """The job's rows as accepted posts (each text, rendered from its row, is how the providers'
    copies are recognised), so that they are accounted for as every other notification is."""
    rows = await fetch(system.database_url, "SELECT id::text, content->'sms'->>'body' AS text FROM notifications WHERE job_id = $1", job_id)
    by_text = {row["text"]: row["id"] for row in rows}
    assert sorted(by_text) == sorted(texts), "every row of the job is stored, once"
    return [
        Posted(index=PLAN.notifications + row, text=text, idempotency_key=f"job-{job_id}-{row}", notification_id=by_text[text])
        for row, text in enumerate(texts)
    ]


# ---------------------------------------------------------------- faults


@dataclass
class Timeline:
    """When each fault began and ended, in seconds after the first POST."""

    sns_cut: float | None = None
    sns_restored: float | None = None
    postgres_stopped: float | None = None
    postgres_started: float | None = None
    sms_outage_began: float | None = None  # unix time: compared with the proxies' clocks
    sms_outage_ended: float | None = None
    posting_done: float | None = None
    settled: float | None = None
    kills: list[Kill] = field(default_factory=list)


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


async def break_dependencies(system: ChaosStack, t0: float, timeline: Timeline) -> None:
    """SNS away from the gateway for 30 s, then one Postgres restart."""
    await sleep_until(t0 + PLAN.sns_cut_at)
    await asyncio.to_thread(system.sns_proxy.cut)
    timeline.sns_cut = time.monotonic() - t0
    try:
        await asyncio.sleep(PLAN.sns_cut_seconds)
    finally:
        await asyncio.to_thread(system.sns_proxy.restore)
        timeline.sns_restored = time.monotonic() - t0
    await sleep_until(t0 + PLAN.postgres_restart_at)
    await asyncio.to_thread(system.postgres.stop)
    timeline.postgres_stopped = time.monotonic() - t0
    try:
        await asyncio.sleep(PLAN.postgres_down_seconds)
    finally:
        await asyncio.to_thread(system.postgres.start)
        timeline.postgres_started = time.monotonic() - t0


async def take_the_primary_sms_provider_down(system: ChaosStack, t0: float, timeline: Timeline) -> None:
    """Every SNS SMS publish fails for ``sms_outage_seconds`` (SES, behind the same proxy, works)."""
    await sleep_until(t0 + PLAN.sms_outage_at)
    await asyncio.to_thread(system.aws_proxy.set_failure_rate, 1.0, kind="sms")
    timeline.sms_outage_began = time.time()
    try:
        await asyncio.sleep(PLAN.sms_outage_seconds)
    finally:
        await asyncio.to_thread(system.aws_proxy.set_failure_rate, None, kind="sms")
        timeline.sms_outage_ended = time.time()


async def kill_senders(fleet: SenderFleet, t0: float, timeline: Timeline, stop: asyncio.Event, cpu: CpuMeter) -> None:
    """SIGKILL one replica every ``kill_interval`` s, rotating over the channels; restart it."""
    turn = 0
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PLAN.kill_interval)
        if stop.is_set():
            return
        sender = fleet.senders[turn % len(fleet.senders)]
        turn += 1
        cpu.sample()
        timeline.kills.append(fleet.kill(sender))
        await asyncio.sleep(PLAN.restart_delay)
        fleet.ensure_running()


async def kill_callback_senders(system: ChaosStack, stop: asyncio.Event, kills: list[float]) -> None:
    """SIGKILL one callback sender replica every ``callback_kill_interval`` s (alternating); restart it."""
    turn = 0
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PLAN.callback_kill_interval)
        if stop.is_set():
            return
        victim = system.callback_senders[turn % len(system.callback_senders)]
        turn += 1
        victim.process.kill()
        kills.append(time.time())
        await asyncio.sleep(PLAN.restart_delay)
        victim.process.start()  # from the main thread's loop: see SenderFleet.ensure_running


# ---------------------------------------------------------------- watching


class CpuMeter:
    """CPU seconds each part of the system used during the run (sampled; a killed sender's
    last few seconds may be missed)."""

    def __init__(self, system: ChaosStack) -> None:
        self._system = system
        self._baseline: dict[int, float] = {}
        self._last: dict[int, tuple[str, float]] = {}

    def _pids(self) -> dict[str, list[int]]:
        system = self._system
        roles: dict[str, list[int | None]] = {
            "gateway": [system.gateway.process.pid],
            "moto": [system.moto.process.pid],
            "wiremock": [system.wiremock.process.pid if system.wiremock.process else None],
            "fault_proxies": [system.aws_proxy.process.pid, system.wiremock_proxy.process.pid],
            "senders": [s.process.pid for s in system.fleet.senders if s.process.running],
            "callbacks": [system.receiver.process.pid, *(p.process.pid for p in system.callback_senders if p.process.running)],
            "test": [os.getpid()],
            "postgres": [],
        }
        with contextlib.suppress(OSError, ValueError, psutil.Error):
            postmaster = psutil.Process(int((system.postgres.data_dir / "postmaster.pid").read_text().split()[0]))
            roles["postgres"] = [postmaster.pid, *(child.pid for child in postmaster.children())]
        return {role: [pid for pid in pids if pid] for role, pids in roles.items()}

    def sample(self, *, baseline: bool = False) -> None:
        for role, pids in self._pids().items():
            for pid in pids:
                with contextlib.suppress(psutil.Error):
                    times = psutil.Process(pid).cpu_times()
                    self._last[pid] = (role, times.user + times.system)
                    if baseline:
                        self._baseline[pid] = times.user + times.system

    def by_role(self) -> dict[str, float]:
        totals: Counter[str] = Counter()
        for pid, (role, seconds) in self._last.items():
            totals[role] += seconds - self._baseline.get(pid, 0.0)
        return {role: round(seconds, 1) for role, seconds in totals.most_common()}


async def fetch(dsn: str, query: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        return await connection.fetch(query, *args, timeout=30)
    finally:
        await connection.close()


def queue_depths(sqs: Any, urls: dict[str, str]) -> dict[str, int]:
    depths = {}
    for queues in ALL_QUEUES:
        for name in (queues.queue, queues.dead_letter_queue):
            url = urls.get(name) or urls.setdefault(name, sqs.get_queue_url(QueueName=name)["QueueUrl"])
            attributes = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            )["Attributes"]
            depths[name] = int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])
    return depths


async def watch(
    system: ChaosStack, t0: float, samples: list[dict[str, Any]], stop: asyncio.Event, cpu: CpuMeter, interval: float = 3.0
) -> None:
    """Every few seconds: delivery statuses, the outbox backlog, queue depths, CPU (best effort)."""
    sqs, urls = system.sqs(), {}
    while not stop.is_set():
        cpu.sample()
        sample: dict[str, Any] = {"t": round(time.monotonic() - t0, 1), "load": round(os.getloadavg()[0], 1)}
        try:
            rows = await fetch(system.database_url, "SELECT status, count(*) AS n FROM deliveries GROUP BY status")
            sample["deliveries"] = {row["status"]: row["n"] for row in rows}
            sample["outbox"] = (await fetch(system.database_url, "SELECT count(*) AS n FROM outbox"))[0]["n"]
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            sample["database"] = type(exc).__name__
        try:
            sample["queues"] = await asyncio.to_thread(queue_depths, sqs, urls)
        except Exception as exc:  # noqa: BLE001 - a sample is best effort
            sample["queues"] = type(exc).__name__
        samples.append(sample)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


def drain_dead_letters(sqs: Any, found: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Take everything out of the DLQs, noting (notification id, channel) and why."""
    for queues in ALL_QUEUES:
        url = sqs.get_queue_url(QueueName=queues.dead_letter_queue)["QueueUrl"]
        while messages := sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300, MessageAttributeNames=["All"]
        ).get("Messages", []):
            for message in messages:
                attributes = message.get("MessageAttributes", {})
                try:
                    notification_id = json.loads(message["Body"])["notification_id"]
                except (ValueError, KeyError, TypeError):
                    notification_id = attributes.get("notification_id", {}).get("StringValue", "?")
                reason = attributes.get("sender_error", {}).get("StringValue", "redrive (5 receives)")
                found[(notification_id, queues.channel.value)] = {"reason": reason}
            sqs.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            )


async def wait_until_settled(
    system: ChaosStack, expected: set[tuple[str, str]], dead_letters: dict[tuple[str, str], dict[str, Any]]
) -> tuple[dict[tuple[str, str], dict[str, Any]], list[tuple[str, str]]]:
    """Until every expected delivery is sent, failed or in a DLQ, or the settle timeout: the last
    rows read, and the deliveries still open."""
    sqs = system.sqs()
    deadline = time.monotonic() + PLAN.settle_timeout
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    while True:
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            records = await fetch(
                system.database_url,
                "SELECT notification_id::text AS id, channel, status, attempts, last_error, claimed_by, claimed_until,"
                " updated_at, sent_at, provider_message_id, provider FROM deliveries",
            )
            rows = {(r["id"], r["channel"]): dict(r) for r in records}
        with contextlib.suppress(BotoCoreError, ClientError):  # moto busy: next round
            await asyncio.to_thread(drain_dead_letters, sqs, dead_letters)
        open_ = [
            key for key in expected
            if key not in dead_letters and rows.get(key, {}).get("status") not in ("sent", "failed")
        ]
        if not open_ or time.monotonic() > deadline:
            return rows, open_
        await asyncio.sleep(2.0)


# ---------------------------------------------------------------- at the providers


def _with_retries(read: Callable[[], list[dict[str, Any]]], attempts: int = 6) -> list[dict[str, Any]]:
    for attempt in range(attempts):
        try:
            return read()
        except (ComponentError, OSError):  # the admin API timed out (10 s) on a busy machine
            if attempt == attempts - 1:
                raise
            time.sleep(5)
    raise AssertionError("unreachable")


def provider_counts(system: ChaosStack, run_id: str) -> dict[str, Counter[str]]:
    """How often each message text reached each provider (this run's texts only)."""
    marker = f"zero-loss {run_id} "
    counts: dict[str, Counter[str]] = {channel.value: Counter() for channel in CHANNELS}
    for sms in _with_retries(system.moto.sent_sms):
        if sms["message"].startswith(marker):
            counts["sms"][sms["message"]] += 1
    for email in _with_retries(system.moto.sent_emails):
        if (email["body"] or "").startswith(marker):
            counts["email"][email["body"]] += 1
    for request in _with_retries(system.wiremock.requests):
        body = request["body"]
        if request["path"] == SLACK_POST_PATH and request["matched"] and isinstance(body, dict):
            text = body.get("text") or ""
            if text.startswith(marker):
                counts["slack"][text] += 1
        elif TWILIO_MESSAGES_PATH.match(request["path"] or "") and request["status"] == 201 and isinstance(body, dict):
            text = body.get("Body") or ""
            if text.startswith(marker):
                counts["sms"][text] += 1
    return counts


def sms_failover(aws_sends: list[dict[str, Any]], wiremock_sends: list[dict[str, Any]], timeline: Timeline) -> dict[str, Any]:
    """Which provider took the SMS before, during and after the SNS SMS outage (by when the
    provider answered, on the proxies' clocks): during it Twilio must take them all (after the
    few seconds the breakers need to open), after it (and the cool-down) SNS most of them again."""
    began, ended = timeline.sms_outage_began, timeline.sms_outage_ended
    if began is None or ended is None:
        return {"outage": "did not happen"}
    settled = 3.0  # seconds for the breakers to open, and for the sends under way to finish
    windows = {
        "before": (float("-inf"), began),
        "during": (began + settled, ended),
        "after": (ended + PLAN.breaker_cooldown_seconds + settled, float("inf")),
    }
    shares: dict[str, dict[str, Any]] = {}
    for window, (start, end) in windows.items():
        sns = sum(1 for send in aws_sends if send["kind"] == "sms" and start <= send["t"] < end)
        twilio = sum(1 for send in wiremock_sends if send["kind"] == "sms" and start <= send["t"] < end)
        shares[window] = {"sns": sns, "twilio": twilio, "sns_share": round(sns / max(1, sns + twilio), 3)}
    return shares


def kills_in_flight(kills: list[Kill], sends: list[dict[str, Any]], superseded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each SIGKILL: the provider calls its victim had under way (started before it was
    frozen, answered by the provider after), beside the duplicates attributed to that kill, split
    into calls under way at the kill and calls answered before it whose ``sent`` was not yet
    committed (the group commit's window)."""
    caused: dict[int, list[dict[str, Any]]] = {}
    for copy in superseded:
        if copy["killed"] is not None:
            caused.setdefault(copy["killed"]["kill"], []).append(copy)
    table = []
    for index, kill in enumerate(kills):
        ports = set(kill.ports)
        under_way = sum(1 for send in sends if send["client_port"] in ports and send["started"] <= kill.frozen_at < send["t"])
        copies = caused.get(index, [])
        table.append(
            {
                "sender": kill.sender,
                "at": kill.at,
                "in_flight": under_way,
                "duplicates": len(copies),
                "duplicates_of_calls_under_way": sum(1 for copy in copies if copy["killed"]["after_seconds"] <= 0),
            }
        )
    return table


# ---------------------------------------------------------------- the account


def account(
    expected: set[tuple[str, str]],
    accepted: dict[str, Posted],
    rows: dict[tuple[str, str], dict[str, Any]],
    counts: dict[str, Counter[str]],
    dead_letters: dict[tuple[str, str], dict[str, Any]],
) -> tuple[Counter[str], Counter[str], int, list[dict[str, Any]]]:
    """Sort every expected delivery: sent (and the provider has it), dead-lettered, or lost."""
    sent: Counter[str] = Counter()
    dead_lettered: Counter[str] = Counter()
    dead_lettered_but_delivered = 0
    lost: list[dict[str, Any]] = []
    for notification_id, channel in sorted(expected):
        row = rows.get((notification_id, channel))
        text = accepted[notification_id].text
        at_provider = counts[channel][text]
        status = row["status"] if row else None
        if status == "sent" and at_provider:
            sent[channel] += 1
        elif (status == "failed" and (row["last_error"] or "").startswith("gave up after")) or (
            (notification_id, channel) in dead_letters
        ):
            dead_lettered[channel] += 1
            dead_lettered_but_delivered += bool(at_provider)
        else:
            details = {key: str(value) for key, value in (row or {"status": "no delivery row"}).items() if key not in ("id", "channel")}
            lost.append({"notification_id": notification_id, "channel": channel, "text": text, "at_provider": at_provider, **details})
    return sent, dead_lettered, dead_lettered_but_delivered, lost


# How far apart a provider's acceptance and the SIGKILL of the process that made the call may be
# for the kill to explain the copy that followed: a call still under way when its process died
# is answered after the kill, and one answered before it may wait that long (send timeout,
# "sent" retries) to be recorded.
KILL_WINDOW_SECONDS = 10.0


def attribute_duplicates(
    counts: dict[str, Counter[str]], sends: list[dict[str, Any]], kills: list[Kill]
) -> list[dict[str, Any]]:
    """Every superseded copy (each copy of a delivery but its last) and why it was made again.

    ``sigkill``: the call came from a connection of a sender that got SIGKILL within
    KILL_WINDOW_SECONDS of the provider accepting it: the window the README owns up to (the
    provider took it, the process died before recording ``sent``, the claim expired and another
    replica sent it again). ``other``: anything else, which the claims should have prevented.
    Copies are counted at the providers (moto, WireMock); the times and connections come from
    the fault proxies, which see the same calls.
    """
    calls: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for send in sorted(sends, key=lambda send: send["t"]):
        calls.setdefault((send["kind"], send["text"]), []).append(send)
    superseded = []
    for channel, counter in counts.items():
        for text, copies in sorted(counter.items()):
            if copies < 2:
                continue
            seen = calls.get((channel, text), [])
            for index in range(copies - 1):
                call = seen[index] if index < len(seen) else None
                killer = None
                if call is not None:
                    killer = next(
                        (
                            kill for kill in kills
                            if kill.channel == channel
                            and call["client_port"] in kill.ports
                            and abs(kill.at - call["t"]) <= KILL_WINDOW_SECONDS
                        ),
                        None,
                    )
                superseded.append(
                    {
                        "channel": channel,
                        "text": text,
                        "copies": copies,
                        "cause": "sigkill" if killer else "other",
                        "accepted_at": call["t"] if call else None,
                        "killed": (
                            {"kill": kills.index(killer), "sender": killer.sender, "after_seconds": round(killer.frozen_at - call["t"], 3)}
                            if killer and call
                            else None
                        ),
                    }
                )
    return superseded


# ---------------------------------------------------------------- status callbacks


async def account_callbacks(
    system: ChaosStack, receiver_name: str, rows: dict[tuple[str, str], dict[str, Any]], accepted: set[str], kills: list[float]
) -> dict[str, Any]:
    """Wait until no event is pending (bounded), then match the receiver's verified 2xx events to
    every delivery's final status: each must have arrived at least once."""
    deadline = time.monotonic() + PLAN.callback_settle_timeout
    pending = given_up = 0
    while True:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            [counts] = await fetch(
                system.database_url,
                "SELECT count(*) FILTER (WHERE given_up_at IS NULL) AS pending, count(*) FILTER (WHERE given_up_at IS NOT NULL) AS given_up"
                " FROM callback_events",
            )
            pending, given_up = counts["pending"], counts["given_up"]
            if pending == 0:
                break
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(2.0)
    received = await asyncio.to_thread(system.receiver.received, receiver_name)
    taken = [event for event in received if event.answered is not None and event.answered < 300]
    seen = {(event.data["notification_id"], event.data["channel"], event.data["status"]) for event in taken if event.verified}
    expected = {
        (notification_id, channel, row["status"])
        for (notification_id, channel), row in rows.items()
        if notification_id in accepted and row["status"] in ("sent", "failed")
    }
    missing = sorted(expected - seen)
    copies = Counter(event.webhook_id for event in taken)
    return {
        "expected": len(expected),
        "delivered": len(expected & seen),
        "missing": len(missing),
        "missing_examples": missing[:20],
        "requests": len(received),
        "answered_500": sum(1 for event in received if event.answered == 500),
        "duplicates": sum(count - 1 for count in copies.values()),
        "not_verified": sum(1 for event in received if not event.verified),
        "pending": pending,
        "given_up": given_up,
        "callback_sender_kills": len(kills),
    }


# ---------------------------------------------------------------- receipts


def ses_delivery_event(message_id: str) -> dict[str, Any]:
    """A Delivery event as AWS documents the ones SES publishes to SNS."""
    return {
        "eventType": "Delivery",
        "mail": {"timestamp": "2017-08-05T00:40:02.012Z", "source": "sender@notifications.com", "messageId": message_id, "destination": ["x@example.com"]},
        "delivery": {"timestamp": "2017-08-05T00:40:03.012Z", "processingTimeMillis": 1000, "recipients": ["x@example.com"], "smtpResponse": "250 OK"},
    }


async def account_receipts(system: ChaosStack, rows: dict[tuple[str, str], dict[str, Any]], accepted: dict[str, Posted]) -> dict[str, Any]:
    """Receipts while the processes that take them in get SIGKILL: a Delivery event for every sent
    email, published to email_events (each one twice), and an SNS delivery status record for every
    SMS SNS sent, written to CloudWatch Logs (each once: a restarted reader reads its overlap
    again), while an email and an SMS sender replica get SIGKILL every few seconds. Every such
    delivery must end ``delivered``, with one receipt (the copies, the redeliveries and the re-reads
    a kill causes are duplicates). Twilio's SMS have no receipts here (no Twilio status callbacks)."""
    sent: dict[str, dict[str, str]] = {"email": {}, "sms": {}}
    for (notification_id, channel), row in rows.items():
        if notification_id in accepted and row["status"] == "sent" and row["provider_message_id"]:
            if channel == "email" or (channel == "sms" and row["provider"] == "sns"):
                sent[channel][notification_id] = row["provider_message_id"]
    aws = Aws(system.moto)
    events = [ses_delivery_event(message_id) for message_id in sent["email"].values()]
    records = [
        sms_record(message_id, phone_number(accepted[notification_id].index % PLAN.recipients))
        for notification_id, message_id in sent["sms"].items()
    ]
    victims = {
        channel: [sender for sender in system.fleet.senders if sender.channel is channel] for channel in (Channel.EMAIL, Channel.SMS)
    }
    stop = asyncio.Event()
    kills: Counter[str] = Counter()
    # An SMS replica less often: each of its log reader's passes reads the whole overlap again
    # (one statement per record), and a reader killed every few seconds might never get past the
    # first part of it; the email events consumer deletes what it applied, so it may die often.
    intervals = {Channel.EMAIL: PLAN.kill_interval / 2, Channel.SMS: PLAN.kill_interval * 2}

    async def kill_receiving_senders(channel: Channel) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=intervals[channel])
            if stop.is_set():
                return
            victim = victims[channel][kills[channel.value] % len(victims[channel])]
            system.fleet.kill(victim)
            kills[channel.value] += 1
            await asyncio.sleep(PLAN.restart_delay)
            victim.process.start()

    killers = [asyncio.create_task(kill_receiving_senders(channel)) for channel in victims]
    started = time.monotonic()
    found: dict[str, list[asyncpg.Record]] = {"email": [], "sms": []}
    try:
        await asyncio.gather(
            asyncio.to_thread(aws.publish_email_events, events + events), asyncio.to_thread(aws.write_sms_delivery_logs, records)
        )
        deadline = time.monotonic() + PLAN.settle_timeout
        while True:
            for channel, ids in sent.items():
                found[channel] = await fetch(
                    system.database_url,
                    "SELECT d.notification_id::text AS id, d.status, (SELECT count(*) FROM receipts AS r"
                    " WHERE r.notification_id = d.notification_id AND r.channel = d.channel) AS receipts"
                    " FROM deliveries AS d WHERE d.channel = $2 AND d.notification_id = ANY($1::uuid[])",
                    list(ids),
                    channel,
                )
            waiting = sum(len(ids) for ids in sent.values()) - sum(1 for each in found.values() for r in each if r["status"] == "delivered")
            if not waiting or time.monotonic() > deadline:
                break
            await asyncio.sleep(2.0)
    finally:
        stop.set()
        await asyncio.gather(*killers, return_exceptions=True)
        system.fleet.ensure_running()
    by_channel = {}
    for channel, ids in sent.items():
        delivered = sum(1 for r in found[channel] if r["status"] == "delivered")
        by_channel[channel] = {
            "sent": len(ids),
            "delivered": delivered,
            "missing": len(ids) - delivered,
            "receipts_not_one": sum(1 for r in found[channel] if r["receipts"] != 1),
        }
    by_channel["email"]["events_published"] = 2 * len(events)
    by_channel["sms"]["log_records_written"] = len(records)
    return {**by_channel, "sender_kills": dict(kills), "seconds": round(time.monotonic() - started, 1)}


# ---------------------------------------------------------------- the test


async def test_every_accepted_notification_is_sent_or_dead_lettered(
    chaos: ChaosStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = secrets.token_hex(3)
    timeline = Timeline()
    samples: list[dict[str, Any]] = []
    dead_letters: dict[tuple[str, str], dict[str, Any]] = {}
    posts = [
        Posted(
            index=i,
            text=f"zero-loss {run_id} #{i:05d}",
            idempotency_key=f"zero-loss-{run_id}-{i}",
            schedule_in=2 + (i * 7) % 19 if PLAN.scheduled_every and i % PLAN.scheduled_every == 0 else None,
        )
        for i in range(PLAN.notifications)
    ]
    stop_killing, stop_watching = asyncio.Event(), asyncio.Event()
    limits = httpx.Limits(max_connections=PLAN.in_flight, max_keepalive_connections=PLAN.in_flight)

    callback_kills: list[float] = []
    async with chaos.gateway.async_client(limits=limits) as client:
        recipients = await register_recipients(client, run_id)
        receiver_name = f"zero-loss-{run_id}"
        answer = await client.put("/callbacks", json={"url": chaos.receiver.url(receiver_name)})
        assert answer.status_code == 200, answer.text
        chaos.receiver.configure(receiver_name, secret=answer.json()["secret"], fail_rate=PLAN.failure_rate)
        job_id, job_texts = await post_job(client, run_id, recipients)
        cpu = CpuMeter(chaos)
        cpu.sample(baseline=True)
        t0 = time.monotonic()
        started_at = datetime.now(UTC)
        background = [
            asyncio.create_task(break_dependencies(chaos, t0, timeline), name="faults"),
            asyncio.create_task(kill_senders(chaos.fleet, t0, timeline, stop_killing, cpu), name="killer"),
            asyncio.create_task(watch(chaos, t0, samples, stop_watching, cpu), name="watch"),
            asyncio.create_task(kill_callback_senders(chaos, stop_killing, callback_kills), name="callback-killer"),
            asyncio.create_task(take_the_primary_sms_provider_down(chaos, t0, timeline), name="sms-outage"),
        ]
        try:
            posting = asyncio.create_task(post_all(client, posts, recipients, t0))
            # Bounded: posts still running at the deadline count as refused (no 201).
            await asyncio.wait([posting], timeout=PLAN.posting_seconds + 90)
            posting.cancel()
            await asyncio.gather(posting, return_exceptions=True)
            timeline.posting_done = time.monotonic() - t0
            stop_killing.set()
            # The faults are over by now on any sensible plan; wait for the restart to finish.
            await asyncio.wait_for(background[0], timeout=PLAN.postgres_restart_at + PLAN.postgres_down_seconds + 60)
            await asyncio.wait_for(background[1], timeout=PLAN.restart_delay + 30)
            await asyncio.wait_for(background[3], timeout=PLAN.restart_delay + 30)
            await asyncio.wait_for(background[4], timeout=PLAN.sms_outage_at + PLAN.sms_outage_seconds + 30)
        finally:
            stop_killing.set()
            for task in (*background[:2], *background[3:]):
                task.cancel()
            await asyncio.gather(*background[:2], *background[3:], return_exceptions=True)
            for process in chaos.callback_senders:
                if not process.process.running:
                    process.process.start()
            # Whatever happened, leave the dependencies up and every sender running.
            await asyncio.to_thread(chaos.sns_proxy.restore)
            if not chaos.postgres.running:
                await asyncio.to_thread(chaos.postgres.start)
            chaos.fleet.ensure_running()

    posts += await job_posts(chaos, job_id, job_texts)
    accepted = {p.notification_id: p for p in posts if p.notification_id}
    expected = {(notification_id, channel.value) for notification_id in accepted for channel in CHANNELS}
    try:
        rows, unsettled = await wait_until_settled(chaos, expected, dead_letters)
        timeline.settled = time.monotonic() - t0
    finally:
        stop_watching.set()
        await asyncio.gather(background[2], return_exceptions=True)
    cpu.sample()
    callbacks = await account_callbacks(chaos, receiver_name, rows, set(accepted), callback_kills)
    receipts = await account_receipts(chaos, rows, accepted)
    # Quiet the machine before asking moto for everything it ever stored (data.json).
    await asyncio.to_thread(chaos.fleet.stop_all)
    reading = time.monotonic()
    counts = await asyncio.to_thread(provider_counts, chaos, run_id)
    reading_seconds = time.monotonic() - reading

    # ---- the account, per (notification, channel)
    sent, dead_lettered, dead_lettered_but_delivered, lost = account(expected, accepted, rows, counts, dead_letters)
    accepted_texts = {p.text for p in accepted.values()}
    unacknowledged = {channel: sorted(t for t in counter if t not in accepted_texts) for channel, counter in counts.items()}
    aws_sends, wiremock_sends = chaos.aws_proxy.sends(), chaos.wiremock_proxy.sends()
    superseded = attribute_duplicates(counts, aws_sends + wiremock_sends, timeline.kills)
    in_flight_at_kills = kills_in_flight(timeline.kills, aws_sends + wiremock_sends, superseded)
    failover = sms_failover(aws_sends, wiremock_sends, timeline)
    sms_by_provider = Counter(str(row.get("provider")) for (_, channel), row in rows.items() if channel == "sms" and row["status"] == "sent")
    by_cause = Counter(copy["cause"] for copy in superseded)
    total_deliveries = len(expected)
    duplicates = len(superseded)
    unexplained_rate = by_cause["other"] / total_deliveries if total_deliveries else 0.0
    by_text = {p.text: p.notification_id for p in posts}
    for copy in superseded:
        notification_id = by_text.get(copy["text"])
        copy["notification_id"] = notification_id
        copy["attempts"] = rows.get((notification_id or "", copy["channel"]), {}).get("attempts")

    # ---- scheduled ones: released once (counted above with the rest), none before its time
    scheduled = {p.notification_id: p.send_at for p in accepted.values() if p.send_at is not None}
    sent_early = [
        {"notification_id": notification_id, "channel": channel, "send_at": str(scheduled[notification_id]), "sent_at": str(row["sent_at"])}
        for (notification_id, channel), row in rows.items()
        if notification_id in scheduled and row.get("sent_at") is not None and row["sent_at"] < scheduled[notification_id]
    ]

    # ---- what the client saw
    attempts = [a for p in posts for a in p.attempts]
    during_cut = [
        a for a in attempts
        if timeline.sns_cut is not None and timeline.sns_restored is not None
        and a.started >= timeline.sns_cut and a.ended <= timeline.sns_restored
    ]
    refused = [p for p in posts if p.notification_id is None]
    sent_times = [r["sent_at"] for r in rows.values() if r.get("sent_at") is not None]
    last_sent = max(sent_times) if sent_times else started_at
    delivering_seconds = max((last_sent - started_at).total_seconds(), 1e-9)
    posting_seconds = timeline.posting_done or 1e-9
    aws_stats, wiremock_stats = chaos.aws_proxy.stats(), chaos.wiremock_proxy.stats()

    summary = {
        "plan": asdict(PLAN),
        "run_id": run_id,
        "notifications": {
            "posted": len(posts),
            "accepted": len(accepted),
            "refused": len(refused),
            "replayed_201": sum(p.replayed for p in posts),
            "post_attempts": len(attempts),
            "gateway_answers": dict(Counter(str(a.outcome) for a in attempts)),
            "during_sns_cut": dict(Counter(str(a.outcome) for a in during_cut)),
            "scheduled": len(scheduled),
            "scheduled_sent_early": len(sent_early),
            "job_rows": len(job_texts),
        },
        "deliveries": {
            "expected": total_deliveries,
            "sent": dict(sent),
            "dead_lettered": dict(dead_lettered),
            "dead_letter_reasons": dict(Counter(f"{channel}: {letter['reason']}" for (_, channel), letter in dead_letters.items())),
            "dead_lettered_but_delivered": dead_lettered_but_delivered,
            "lost": len(lost),
            "still_open_at_the_settle_deadline": len(unsettled),
        },
        "duplicates": {
            "total": duplicates,
            "rate": round(duplicates / max(1, total_deliveries), 5),
            "by_channel": dict(Counter(copy["channel"] for copy in superseded)),
            "by_cause": {"sigkill_window": by_cause["sigkill"], "other": by_cause["other"]},
            "other_rate": round(unexplained_rate, 5),
            "per_sender_kill": round(by_cause["sigkill"] / max(1, len(timeline.kills)), 2),
            "in_flight_per_sender_kill": round(sum(k["in_flight"] for k in in_flight_at_kills) / max(1, len(in_flight_at_kills)), 2),
        },
        "sms_failover": {"sent_by_provider": dict(sms_by_provider), "provider_answers": failover},
        "delivered_without_201": {channel: len(texts) for channel, texts in unacknowledged.items()},
        "faults": {
            "sender_kills": dict(chaos.fleet.kills),
            "provider_failures_injected": {"sns_and_ses": aws_stats["failed_by_kind"], "slack_and_twilio": wiremock_stats["failed_by_kind"]},
            "provider_sends_seen_by_proxies": {"sns_and_ses": aws_stats["picked"], "slack_and_twilio": wiremock_stats["picked"]},
            "timeline": {key: value for key, value in asdict(timeline).items() if key != "kills"},
        },
        "timings": {
            "total_seconds": round(timeline.settled or 0.0, 1),
            "posting_seconds": round(posting_seconds, 1),
            "accepted_per_second": round(len(accepted) / posting_seconds, 1),
            "delivered_per_second": round(sum(sent.values()) / delivering_seconds, 1),
            "last_delivery_after_seconds": round(delivering_seconds, 1),
            "reading_providers_seconds": round(reading_seconds, 1),
        },
        "callbacks": {key: value for key, value in callbacks.items() if key != "missing_examples"},
        "receipts": receipts,
        "cpu_seconds": cpu.by_role(),
        "peaks": {
            "outbox": max((s.get("outbox", 0) for s in samples), default=0),
            "queues": {
                name: max((s["queues"].get(name, 0) for s in samples if isinstance(s.get("queues"), dict)), default=0)
                for name in (queues.queue for queues in ALL_QUEUES)
            },
        },
        "samples": samples,
        "kills": [asdict(kill) for kill in timeline.kills],
        "in_flight_at_kills": in_flight_at_kills,
        "started_at": started_at.isoformat(),
        "lost_examples": lost[:20],
        "duplicate_examples": superseded[:200],
    }
    summary_path = tmp_path / "zero_loss_summary.json"
    summary_path.write_text(json.dumps(summary, indent=2, default=str))
    headline = {
        key: summary[key]
        for key in (
            "notifications", "deliveries", "duplicates", "sms_failover", "delivered_without_201", "faults", "timings", "callbacks",
            "receipts", "cpu_seconds", "peaks",
        )
    }
    timings = summary["timings"]
    in_brief = (
        f"zero-loss: {len(accepted)}/{len(posts)} accepted, {sum(sent.values())}/{total_deliveries} deliveries sent, "
        f"{sum(dead_lettered.values())} dead-lettered, {len(lost)} lost; {duplicates} duplicates "
        f"({duplicates / max(1, total_deliveries):.2%}; {by_cause['sigkill']} in a SIGKILL window, "
        f"{by_cause['other']} other); {timings['total_seconds']} s, {timings['accepted_per_second']} accepted/s, "
        f"{timings['delivered_per_second']} delivered/s; callbacks: {callbacks['delivered']}/{callbacks['expected']} "
        f"final-status events delivered, {callbacks['missing']} missing, {callbacks['duplicates']} duplicates "
        f"({callbacks['callback_sender_kills']} SIGKILLs)"
    )
    kill_table = "\n".join(
        f"  {kill['at'] - started_at.timestamp():7.1f} s  {kill['sender']:<16} {kill['in_flight']:>9} {kill['duplicates']:>11}"
        f" {kill['duplicates_of_calls_under_way']:>10}"
        for kill in in_flight_at_kills
    )
    with capsys.disabled():
        print(
            f"\n{in_brief}\nsummary ({summary_path}):\n{json.dumps(headline, indent=2, default=str)}"
            f"\nSIGKILLs of senders: provider calls under way at the kill, beside the duplicates it caused"
            f"\n  {'at':>9}  {'sender':<16} {'in flight':>9} {'duplicates':>11} {'(under way)':>10}\n{kill_table}"
        )

    def diagnosis() -> str:
        return (
            f"\n{json.dumps(lost[:20], indent=2, default=str)}\n\nsenders:\n{chaos.fleet.log_tails()}"
            f"\n--- gateway:\n{chaos.gateway.process.log_tail(20)}\nsummary: {summary_path}"
        )

    first_refused = next((p.attempts[0].started for p in refused if p.attempts), None)
    assert not refused, (
        f"{len(refused)} notifications never got a 201 (the first was posted {first_refused} s "
        f"in; SNS was cut at {timeline.sns_cut}, Postgres stopped at {timeline.postgres_stopped} and started at "
        f"{timeline.postgres_started}): "
        + "; ".join(f"#{p.index}: {p.refusal}" for p in refused[:5])
        + f"\n--- gateway:\n{chaos.gateway.process.log_tail(10)}\nsummary: {summary_path}"
    )
    assert during_cut, "no POST fell inside the SNS outage; the plan is too short"
    assert set(Counter(a.outcome for a in during_cut)) == {201}, (
        f"while SNS was unreachable the gateway answered {dict(Counter(a.outcome for a in during_cut))}; "
        f"it must accept into the outbox.\n--- gateway:\n{chaos.gateway.process.log_tail(20)}"
    )
    queues_at_the_end = next((s["queues"] for s in reversed(samples) if isinstance(s.get("queues"), dict)), {})
    assert not unsettled, (
        f"{len(unsettled)} of {total_deliveries} deliveries were still pending or sending {PLAN.settle_timeout:g} s after "
        f"the last POST, with {queues_at_the_end} messages in the queues: with messages left the system was too slow "
        "for this plan (lower ZERO_LOSS_POST_RATE or raise ZERO_LOSS_SETTLE_TIMEOUT); with none, they are lost:"
        + diagnosis()
    )
    assert not lost, f"{len(lost)} of {total_deliveries} deliveries are neither sent nor dead-lettered:" + diagnosis()
    assert not sent_early, f"{len(sent_early)} scheduled deliveries were sent before their send_at: {sent_early[:5]}"
    assert callbacks["not_verified"] == 0, f"{callbacks['not_verified']} callbacks failed standardwebhooks verification"
    assert callbacks["missing"] == 0, (
        f"{callbacks['missing']} of {callbacks['expected']} deliveries' final-status events never reached the receiver "
        f"(given up: {callbacks['given_up']}, still pending: {callbacks['pending']}):\n"
        + json.dumps(callbacks["missing_examples"], indent=2, default=str)
        + "".join(f"\n--- {p.process.name}:\n{p.process.log_tail(15)}" for p in chaos.callback_senders)
    )
    for channel in ("email", "sms"):
        assert receipts[channel]["missing"] == 0, f"{receipts[channel]['missing']} sent {channel} deliveries did not end delivered: {receipts}"
        assert receipts[channel]["receipts_not_one"] == 0, f"{channel} deliveries without exactly one receipt: {receipts}"
    during, after = failover.get("during", {}), failover.get("after", {})
    # SNS may still answer a publish that started before the outage; nothing started during it reaches SNS.
    assert during and during["twilio"] > 0 and during["sns_share"] <= 0.02, (
        f"while SNS SMS was down its traffic did not move to Twilio: {failover}\nsummary: {summary_path}"
    )
    assert after and after["sns_share"] > 0.5, (
        f"after SNS SMS recovered (and the breakers' cool-down) the traffic did not come back to it: {failover}\nsummary: {summary_path}"
    )
    assert unexplained_rate <= PLAN.max_duplicate_rate, (
        f"{by_cause['other']} duplicates in {total_deliveries} deliveries ({unexplained_rate:.3%}) that no SIGKILL "
        f"explains; at most {PLAN.max_duplicate_rate:.1%}:\n"
        + json.dumps([copy for copy in superseded if copy["cause"] == "other"][:20], indent=2, default=str)
        + f"\nsummary: {summary_path}"
    )
