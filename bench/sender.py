"""Sender benchmark: one Slack sender at concurrency 32 against a Slack that takes 200 ms per message.

    python -m bench.sender                          # on moto
    python -m bench.sender --emulator localstack    # on LocalStack (host mode)

Little's law bounds one sender process: with 32 messages in flight and 200 ms per provider call it
delivers at most 32 / 0.2 s = 160 messages/s. The figure is delivered/s in steady state divided by
that bound (target: at least 0.95, issue 15), with the sender's CPU seconds per message and its memory.

The stack is its own (bench/system.py): a fresh database, moto or LocalStack, WireMock with a
mapping that answers chat.postMessage after 200 ms (priority over the stack's file mapping), and
``python -m sender_slack`` with its production settings except the rate limit, raised so that it
does not bind (it is per Slack channel, and every message goes to a channel of its own anyway).

Feeding: every message is first written to Postgres as the gateway writes it (a notification and
a ``pending`` Slack delivery: harness/database.py's ``insert_notifications``), then
published to the SNS topic with the ``channels`` attribute, as the gateway publishes (PublishBatch
of 10; a single Publish tops out near 50/s on either emulator, below what the sender must be fed).
The SNS subscription's filter puts it on ``slack_notifications``. A feeder keeps a moderate
backlog (``--backlog`` published and not yet sent) ahead of the sender: moto's ReceiveMessage
slows down as a queue deepens, so a deep pre-loaded queue would measure moto. The queue's visible
depth is sampled: if it ever reached 0 in the window, the sender was starved and the figure says so.

Beside it, a baseline in the spirit of bench/gateway.py's: a bare aiohttp client with the same
concurrency against the same WireMock (bench/bare_slack_client.py), before and after the sender
run: on a shared, noisy machine even that does not reach the bound, and the ratio of the two says
how much of the gap is the sender's.

With ``--callbacks``, rounds alternate between no status callback and a callback configured for
the notifications' client (every event): the deliveries' triggers (migration 0007) then write a
``delivery.sent`` event per message in the group-committed ``sent`` UPDATE. Nothing sends the
events (no callback sender runs): what is measured is what writing them costs the senders' hot
path, as sender CPU per message and as Postgres CPU per message (the CPU time of the database's
backends, the sender's connections among them), each round beside its neighbours.

With ``--rate-limit local`` or ``--rate-limit shared`` every message goes to one Slack channel (one
rate-limit bucket, as SMS and email have one each), and the bucket is the process's own or the one
replicas share in Postgres (``SLACK_SENDER_RATE_LIMIT_SHARED``, ``shared/provider_rate_limit.py``),
its rate still too high to bind: a run of each gives what sharing costs, in sender and Postgres CPU
per message.

Prints a table for people and, last, one JSON line for machines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from bench.system import EMULATOR_NAMES, ProcessGauge, bench_system, load_average, work_directory
from harness.database import make_notification
from harness.senders import SenderProcess
from harness.slack import slack_ok
from shared.aws import aws_clients
from shared.channels import Channel
from shared.messages import NotificationMessage
from shared.settings import ServiceSettings
from shared.topology import queues_for

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.95
SNS_BATCH_SIZE = 10
FEED_INTERVAL_SECONDS = 0.1
SAMPLE_INTERVAL_SECONDS = 0.5


# ---------------------------------------------------------------- feeding


class Feeder:
    """Publishes pre-inserted notifications so that ``backlog`` of them are always published and not yet sent."""

    def __init__(self, *, sns: Any, topic_arn: str, messages: Sequence[NotificationMessage], connection: asyncpg.Connection, backlog: int) -> None:
        self._sns = sns
        self._topic_arn = topic_arn
        self._messages = messages
        self._connection = connection
        self._backlog = backlog
        self.published = 0
        self.exhausted = False
        self.publish_seconds: list[float] = []  # per PublishBatch call

    async def top_up(self) -> None:
        sent = await self._connection.fetchval("SELECT count(*) FROM deliveries WHERE status = 'sent'")
        missing = self._backlog - (self.published - sent)
        batches = min(8, missing // SNS_BATCH_SIZE)
        if batches <= 0:
            return
        if self.published + batches * SNS_BATCH_SIZE > len(self._messages):
            self.exhausted = True
            batches = (len(self._messages) - self.published) // SNS_BATCH_SIZE
        chunks = [
            self._messages[self.published + index * SNS_BATCH_SIZE : self.published + (index + 1) * SNS_BATCH_SIZE]
            for index in range(batches)
        ]
        self.published += sum(len(chunk) for chunk in chunks)
        await asyncio.gather(*(self._publish(chunk) for chunk in chunks))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.top_up()
            await asyncio.sleep(FEED_INTERVAL_SECONDS)

    async def _publish(self, chunk: Sequence[NotificationMessage]) -> None:
        started = time.monotonic()
        response = await self._sns.publish_batch(
            TopicArn=self._topic_arn,
            PublishBatchRequestEntries=[
                {"Id": str(index), "Message": message.to_json(), "MessageAttributes": message.sns_message_attributes()}
                for index, message in enumerate(chunk)
            ],
        )
        self.publish_seconds.append(time.monotonic() - started)
        if response.get("Failed"):
            raise RuntimeError(f"SNS refused part of a batch: {response['Failed'][:3]}")


# ---------------------------------------------------------------- measuring


@dataclass
class Edge:
    """The sender at one edge of the measured window."""

    wall: float  # time.time(), to compare with Postgres timestamps
    cpu_seconds: float
    sent: float
    received: float
    send_seconds_sum: float
    send_count: float

    @classmethod
    def take(cls, sender: SenderProcess, gauge: ProcessGauge) -> Edge:
        metrics = sender.metrics()
        labels = (("channel", Channel.SLACK.value),)
        return cls(
            wall=time.time(),
            cpu_seconds=gauge.cpu_seconds(),
            sent=metrics.get(("sender_messages_sent_total", labels), 0.0),
            received=metrics.get(("sender_messages_received_total", labels), 0.0),
            send_seconds_sum=metrics.get(("sender_send_duration_seconds_sum", labels), 0.0),
            send_count=metrics.get(("sender_send_duration_seconds_count", labels), 0.0),
        )


@dataclass
class Samples:
    rss_mb: list[float] = field(default_factory=list)
    in_flight: list[float] = field(default_factory=list)
    visible_depth: list[int] = field(default_factory=list)


async def sample(*, sender: SenderProcess, gauge: ProcessGauge, sqs: Any, queue_url: str, samples: Samples, stop: asyncio.Event) -> None:
    while not stop.is_set():
        samples.rss_mb.append(gauge.rss_mb())
        metrics = await asyncio.to_thread(sender.metrics)
        samples.in_flight.append(metrics.get(("sender_messages_in_flight", (("channel", Channel.SLACK.value),)), 0.0))
        attributes = await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
        samples.visible_depth.append(int(attributes["Attributes"]["ApproximateNumberOfMessages"]))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=SAMPLE_INTERVAL_SECONDS)


async def postgres_cpu_seconds(connection: asyncpg.Connection) -> float:
    """CPU seconds used so far by the backends of this database (the sender's pool, the feeder)."""
    pids = [row[0] for row in await connection.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")]
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


CALLBACK_CLIENT = "sender-tests"  # harness/database.py's make_notification's client


async def set_callback(connection: asyncpg.Connection, *, on: bool) -> None:
    if on:
        await connection.execute(
            "INSERT INTO callbacks (client, url, events, secret) VALUES ($1, 'https://203.0.114.10/bench',"
            " ARRAY['delivery.sent', 'delivery.delivered', 'delivery.failed', 'delivery.skipped', 'delivery.cancelled'],"
            " 'whsec_YmVuY2htYXJrYmVuY2htYXJrYmVuY2htYXJr') ON CONFLICT (client) DO NOTHING",
            CALLBACK_CLIENT,
        )
    else:
        await connection.execute("DELETE FROM callbacks WHERE client = $1", CALLBACK_CLIENT)


@dataclass
class Round:
    number: int
    bare_before: dict[str, float]
    first: Edge
    last: Edge
    load_average: str
    bare_after: dict[str, float] = field(default_factory=dict)
    delivered: int = 0
    callback: bool = False
    postgres_cpu_seconds: float = 0.0
    events_written: int = 0

    @property
    def seconds(self) -> float:
        return self.last.wall - self.first.wall

    @property
    def per_second(self) -> float:
        return self.delivered / self.seconds

    @property
    def bare_per_second(self) -> float:
        """The bare client's rate around this round: the mean of the runs before and after it."""
        return (self.bare_before["per_second"] + self.bare_after["per_second"]) / 2


async def wait_until_sent(feeder: Feeder, connection: asyncpg.Connection, timeout: float = 15.0) -> None:
    """Until everything published is sent, so that the bare client runs alone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await connection.fetchval("SELECT count(*) FROM deliveries WHERE status = 'sent'") >= feeder.published:
            return
        await asyncio.sleep(0.2)


async def measure(
    *,
    args: argparse.Namespace,
    messages: Sequence[NotificationMessage],
    launch: Callable[[], SenderProcess],
    wait_ready: Callable[[SenderProcess], None],
    bare: Callable[[], dict[str, float]],
    aws_endpoint_url: str,
    topic_arn: str,
    database_url: str,
) -> dict[str, Any]:
    """Rounds of (bare client alone, then the sender fed) with the bare client once more at the end."""
    settings = ServiceSettings(aws_endpoint_url=aws_endpoint_url)
    connection = await asyncpg.connect(database_url)
    # The feeder's own: it polls while the rounds read Postgres's CPU on the other, and one asyncpg
    # connection runs one statement at a time.
    feeder_connection = await asyncpg.connect(database_url)
    rounds: list[Round] = []
    samples = Samples()
    profile: dict[str, Any] | None = None
    try:
        async with aws_clients(settings, "sns", "sqs") as (sns, sqs):
            queue_url = (await sqs.get_queue_url(QueueName=queues_for(Channel.SLACK).queue))["QueueUrl"]
            feeder = Feeder(sns=sns, topic_arn=topic_arn, messages=messages, connection=feeder_connection, backlog=args.backlog)
            sender = launch()
            await asyncio.to_thread(wait_ready, sender)
            gauge = ProcessGauge("sender_slack", sender.process.pid)  # type: ignore[arg-type]
            # WireMock's JVM is still compiling its hot paths during the first run (it spends twice the CPU per
            # answer of later runs): warm it up, discard that run.
            await asyncio.to_thread(bare)
            bare_before = await asyncio.to_thread(bare)
            for number in range(1, args.rounds + 1):
                callback = args.callbacks and number % 2 == 0
                await set_callback(connection, on=callback)
                events_before = await connection.fetchval("SELECT count(*) FROM callback_events")
                stop = asyncio.Event()
                feeding = asyncio.create_task(feeder.run(stop))
                await asyncio.sleep(args.warmup)
                sampling = asyncio.create_task(sample(sender=sender, gauge=gauge, sqs=sqs, queue_url=queue_url, samples=samples, stop=stop))
                recorder = start_profile(sender.process.pid, args.duration) if args.profile and number == args.rounds else None  # type: ignore[arg-type]
                first = await asyncio.to_thread(Edge.take, sender, gauge)
                postgres_first = await postgres_cpu_seconds(connection)
                await asyncio.sleep(args.duration)
                postgres_last = await postgres_cpu_seconds(connection)
                last = await asyncio.to_thread(Edge.take, sender, gauge)
                stop.set()
                await asyncio.gather(feeding, sampling)
                if recorder is not None:
                    profile = await asyncio.to_thread(read_profile, recorder)
                this = Round(number, bare_before, first, last, load_average(), callback=callback)
                this.postgres_cpu_seconds = postgres_last - postgres_first
                this.events_written = await connection.fetchval("SELECT count(*) FROM callback_events") - events_before
                await wait_until_sent(feeder, connection)
                this.bare_after = bare_before = await asyncio.to_thread(bare)
                rounds.append(this)
                print(
                    f"  round {number}: sender {(last.sent - first.sent) / this.seconds:.1f}/s; bare client "
                    f"{this.bare_before['per_second']:.1f}/s before, {this.bare_after['per_second']:.1f}/s after; "
                    f"load average {this.load_average}" + (f"; callback {'on' if callback else 'off'}" if args.callbacks else ""),
                    file=sys.stderr,
                )
            peak_rss = gauge.peak_rss_mb()
            sender_process = sender
        sent_times = [
            row["t"]
            for row in await connection.fetch("SELECT extract(epoch FROM sent_at)::float8 AS t FROM deliveries WHERE status = 'sent'")
        ]
    finally:
        await connection.close()
        await feeder_connection.close()

    for this in rounds:
        this.delivered = sum(1 for t in sent_times if this.first.wall <= t < this.last.wall)
    seconds = sum(r.seconds for r in rounds)
    delivered = sum(r.delivered for r in rounds)
    cpu = sum(r.last.cpu_seconds - r.first.cpu_seconds for r in rounds)
    sends = sum(r.last.send_count - r.first.send_count for r in rounds)
    send_seconds = sum(r.last.send_seconds_sum - r.first.send_seconds_sum for r in rounds)
    bound = args.concurrency / (args.delay_ms / 1000)
    return {
        "sender": sender_process,
        "bound_per_second": bound,
        "window_seconds": seconds,
        "delivered": delivered,
        "delivered_per_second": delivered / seconds,
        "ratio": delivered / seconds / bound,
        # Per round against the bare client around it, then the median (rounds are not pooled).
        "ratio_to_bare_client": _median([r.per_second / r.bare_per_second for r in rounds]),
        "rounds": [
            {
                "delivered_per_second": r.per_second,
                "bare_client_before": r.bare_before,
                "bare_client_after": r.bare_after,
                "ratio": r.per_second / bound,
                "ratio_to_bare_client": r.per_second / r.bare_per_second,
                "load_average": r.load_average,
                "callback": r.callback,
                "events_written": r.events_written,
                "sender_cpu_ms_per_message": 1000 * (r.last.cpu_seconds - r.first.cpu_seconds) / r.delivered if r.delivered else float("inf"),
                "postgres_cpu_ms_per_message": 1000 * r.postgres_cpu_seconds / r.delivered if r.delivered else float("inf"),
            }
            for r in rounds
        ],
        "callbacks": _callback_cost(rounds) if args.callbacks else None,
        "cpu_ms_per_message": 1000 * cpu / delivered if delivered else float("inf"),
        "cpu_percent": 100 * cpu / seconds,
        "mean_send_seconds": send_seconds / sends if sends else float("nan"),
        "mean_in_flight": sum(samples.in_flight) / len(samples.in_flight) if samples.in_flight else float("nan"),
        "rss_mb_max_sampled": max(samples.rss_mb, default=float("nan")),
        "peak_rss_mb": peak_rss,
        "min_visible_depth": min(samples.visible_depth, default=0),
        "median_visible_depth": sorted(samples.visible_depth)[len(samples.visible_depth) // 2] if samples.visible_depth else 0,
        "published": feeder.published,
        "feeder_exhausted": feeder.exhausted,
        "mean_publish_batch_ms": 1000 * sum(feeder.publish_seconds) / len(feeder.publish_seconds) if feeder.publish_seconds else float("nan"),
        "profile": profile,
    }


def _callback_cost(rounds: list[Round]) -> dict[str, float]:
    """Mean sender and Postgres CPU ms per message in the rounds with and without a callback."""
    def mean(callback: bool, what: str) -> float:
        chosen = [r for r in rounds if r.callback is callback and r.delivered]
        if what == "sender":
            seconds = sum(r.last.cpu_seconds - r.first.cpu_seconds for r in chosen)
        else:
            seconds = sum(r.postgres_cpu_seconds for r in chosen)
        delivered = sum(r.delivered for r in chosen)
        return 1000 * seconds / delivered if delivered else float("nan")

    return {
        "sender_cpu_ms_without": mean(False, "sender"),
        "sender_cpu_ms_with": mean(True, "sender"),
        "postgres_cpu_ms_without": mean(False, "postgres"),
        "postgres_cpu_ms_with": mean(True, "postgres"),
    }


def bare_client(url: str, args: argparse.Namespace) -> dict[str, float]:
    argv = [
        sys.executable, "-m", "bench.bare_slack_client", "--url", url, "--concurrency", str(args.concurrency),
        "--seconds", str(args.baseline_seconds), "--warmup", "1",
    ]
    result = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the baseline client failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.splitlines()[-1])


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


# ---------------------------------------------------------------- profile (--profile)

# Where a sample of the sender's CPU goes, by the first of these its stack matches.
STAGES: tuple[tuple[str, str], ...] = (
    ("logging (structlog)", "structlog"),
    ("claim: the batched conditional UPDATE (asyncpg)", "DeliveryRepository._claim_batch"),
    ("sent: the group-committed UPDATE (asyncpg)", "DeliveryRepository._mark_sent_batch"),
    ("SQS ReceiveMessage (aiobotocore)", "SqsQueue.receive"),
    ("SQS DeleteMessageBatch (aiobotocore)", "DeleteBatcher"),
    ("Slack chat.postMessage (aiohttp)", "SlackProvider.send"),
    ("message parsing (pydantic)", "NotificationMessage.from_json"),
    ("heartbeat", "Consumer.heartbeat"),
    ("metrics (prometheus_client)", "prometheus_client"),
    ("queue depth reporter, ops server", "shared/queue_metrics.py"),
)


def start_profile(pid: int, seconds: float) -> tuple[subprocess.Popen[bytes], Path]:
    raw = Path(tempfile.mkstemp(prefix="sender-profile-", suffix=".txt")[1])
    # --gil: only the thread running Python code counts; --nonblocking: the sender is not paused per sample.
    argv = [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid), "--duration", str(int(seconds)),
            "--rate", "100", "--format", "raw", "--output", str(raw), "--gil", "--nonblocking"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), raw


def read_profile(recorder: tuple[subprocess.Popen[bytes], Path]) -> dict[str, Any]:
    process, raw = recorder
    _, errors = process.communicate(timeout=60)
    if process.returncode != 0:
        raise RuntimeError(f"py-spy failed: {errors.decode()[-2000:]}")
    by_stage: dict[str, int] = {}
    by_package: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        stage = next((label for label, marker in STAGES if marker in stack), "event loop, I/O callbacks and the rest")
        by_stage[stage] = by_stage.get(stage, 0) + int(count)
        top = stack.rsplit(";", 1)[-1].partition(" (")[2]
        package = top.split("site-packages/", 1)[1].split("/", 1)[0] if "site-packages/" in top else top.split("/", 1)[0].rsplit(":", 1)[0]
        by_package[package] = by_package.get(package, 0) + int(count)
    raw.unlink()
    share = lambda counts: sorted(((name, n / total) for name, n in counts.items()), key=lambda item: -item[1])  # noqa: E731
    return {"samples": total, "by_stage": share(by_stage), "by_package": share(by_package)[:12]}


# ---------------------------------------------------------------- report


def print_report(result: dict[str, Any], args: argparse.Namespace, machine: str) -> None:
    bound = result["bound_per_second"]
    print()
    print(
        f"Sender benchmark: one python -m sender_slack, concurrency {args.concurrency}, Slack (WireMock) answering after "
        f"{args.delay_ms} ms; {args.rounds} rounds of {args.duration:g} s measured (after {args.warmup:g} s of feeding), "
        f"backlog {args.backlog} ahead of it; a bare client before and after each round"
        + (f"; one Slack channel, rate limit {args.rate_limit}" + (" (one bucket in Postgres)" if args.rate_limit == "shared" else " (per process)") if args.rate_limit else "")
    )
    print(machine)
    print()
    header = f"{'round':<7}{'bare client/s':>14}{'sender/s':>10}{'of bound':>10}{'of bare':>9}{'sender ms':>10}{'pg ms':>7}  load average"
    print(header)
    print("-" * len(header))
    for number, row in enumerate(result["rounds"], start=1):
        bare = (row["bare_client_before"]["per_second"] + row["bare_client_after"]["per_second"]) / 2
        print(
            f"{number:<7}{bare:>14.1f}{row['delivered_per_second']:>10.1f}{row['ratio']:>10.2f}{row['ratio_to_bare_client']:>9.2f}"
            f"{row['sender_cpu_ms_per_message']:>10.2f}{row['postgres_cpu_ms_per_message']:>7.2f}  {row['load_average']}"
            + (f"  callback {'on, ' + str(row['events_written']) + ' events' if row['callback'] else 'off'}" if args.callbacks else "")
        )
    print(f"{'all':<7}{'':>14}{result['delivered_per_second']:>10.1f}{result['ratio']:>10.2f}{result['ratio_to_bare_client']:>9.2f}  (median)")
    print()
    verdict = "meets" if result["ratio"] >= TARGET_RATIO else "MISSES"
    print(
        f"delivered/s (Postgres sent_at) over the Little-law bound {args.concurrency} / {args.delay_ms / 1000:g} s = {bound:g}/s: "
        f"{result['ratio']:.2f} ({verdict} the target >= {TARGET_RATIO:g}); over a bare aiohttp client with {args.concurrency} "
        f"workers on the same WireMock: {result['ratio_to_bare_client']:.2f}"
    )
    print(
        f"sender: {result['cpu_ms_per_message']:.2f} CPU ms per message ({result['cpu_percent']:.0f}% of a core); "
        f"RSS {result['rss_mb_max_sampled']:.0f} MB (max sampled), peak {result['peak_rss_mb']:.0f} MB (VmHWM)"
    )
    print(
        f"slots: {result['mean_in_flight']:.1f} of {args.concurrency} busy on average; the provider call took "
        f"{1000 * result['mean_send_seconds']:.0f} ms on average as the sender saw it, so a message held its slot "
        f"{1000 * result['mean_in_flight'] / result['delivered_per_second']:.0f} ms (Little: busy slots / delivered per s)"
    )
    print(
        f"CPU: at {result['cpu_ms_per_message']:.2f} ms per message, {bound:g}/s would take {result['cpu_ms_per_message'] * bound / 1000:.2f} "
        f"cores of the sender alone; it got {result['cpu_percent'] / 100:.2f} (the machine has {os.cpu_count()}, shared with the emulator, "
        f"WireMock and Postgres)"
    )
    if result["min_visible_depth"] > 0:
        empty = 1 - result["mean_in_flight"] / args.concurrency
        print(
            f"slots stood empty {100 * empty:.0f}% of the time although the queue always held messages: time between a slot "
            f"freeing and ReceiveMessage filling it (the emulator's answer, and the sender's own turn to ask)"
            + ("; mostly that: the emulator is the bottleneck" if empty > 0.5 else "")
        )
    starved = result["min_visible_depth"] == 0
    print(
        f"queue: visible depth min {result['min_visible_depth']}, median {result['median_visible_depth']} while measuring "
        f"({'EMPTY at times: the emulator did not keep up, a lower bound' if starved else 'never empty'}); "
        f"PublishBatch of 10 took {result['mean_publish_batch_ms']:.0f} ms on average; {result['published']} published"
        f"{' (ran out of messages)' if result['feeder_exhausted'] else ''}"
    )
    if result["callbacks"]:
        cost = result["callbacks"]
        print(
            f"status callback configured vs not (rounds alternate): sender {cost['sender_cpu_ms_without']:.2f} -> "
            f"{cost['sender_cpu_ms_with']:.2f} CPU ms per message, Postgres {cost['postgres_cpu_ms_without']:.2f} -> "
            f"{cost['postgres_cpu_ms_with']:.2f} CPU ms per message (the triggers writing one event per sent message)"
        )
    if result["profile"]:
        profile = result["profile"]
        print()
        print(f"Where the sender's CPU goes (py-spy --gil, 100 Hz, last round, {profile['samples']} samples):")
        for name, part in profile["by_stage"]:
            print(f"  {100 * part:5.1f}%  {name}")
        print("by package (the sampled frame's):", ", ".join(f"{name} {100 * part:.0f}%" for name, part in profile["by_package"]))


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--emulator", choices=EMULATOR_NAMES, default="moto", help="the AWS emulator (default moto; moto-patched: with the zero-loss test's fixes)")
    parser.add_argument("--concurrency", type=int, default=32, help="SLACK_SENDER_CONCURRENCY (default 32)")
    parser.add_argument("--delay-ms", type=int, default=200, help="WireMock's delay on chat.postMessage (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each a bare-client run and a sender run (default 3)")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per round (default 10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of feeding before measuring, per round (default 3)")
    parser.add_argument("--backlog", type=int, default=200, help="messages published and not yet sent, kept ahead of the sender (default 200)")
    parser.add_argument("--baseline-seconds", type=float, default=5.0, help="seconds per bare-client run (default 5)")
    parser.add_argument("--profile", action="store_true", help="sample the sender with py-spy in the last round: where its CPU goes")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (service logs)")
    parser.add_argument(
        "--callbacks", action="store_true", help="alternate rounds without and with a status callback configured (the triggers' cost; use an even --rounds)"
    )
    parser.add_argument(
        "--rate-limit", choices=["local", "shared"], help="one Slack channel for every message, its bucket the process's own or shared in Postgres (run both: sharing's cost)"
    )
    args = parser.parse_args()
    bound = args.concurrency / (args.delay_ms / 1000)

    with work_directory("bench-sender-", keep=args.keep) as (work_dir, cleanup):
        bench = bench_system(work_dir, cleanup, emulator=args.emulator, wiremock_journal=False)
        system = bench.system
        system.slack.answer_every_post(slack_ok(delay_ms=args.delay_ms))
        # Enough for the whole run at the bound and then some; a channel of its own each.
        count = math.ceil(1.5 * bound * args.rounds * (args.warmup + args.duration + 5)) + args.backlog
        messages = [
            make_notification(
                channels=(Channel.SLACK,), name=f"bench-{index}", slack_id="CB00000000" if args.rate_limit else f"CB{index:08d}", phone_number=None, email=None
            )
            for index in range(count)
        ]
        system.db.insert_notifications(messages)
        senders = system.senders
        post_url = f"{system.wiremock.slack_api_url}chat.postMessage"

        def launch() -> SenderProcess:
            return senders.launch(
                Channel.SLACK,
                CONCURRENCY=str(args.concurrency),
                RATE_LIMIT_PER_SECOND="1000000",
                RATE_LIMIT_BURST="1000000",
                RATE_LIMIT_SHARED="true" if args.rate_limit == "shared" else "false",
            )

        load_before = load_average()
        result = asyncio.run(
            measure(
                args=args,
                messages=messages,
                launch=launch,
                wait_ready=senders.wait_ready,
                bare=lambda: bare_client(post_url, args),
                aws_endpoint_url=system.emulator.endpoint_url,
                topic_arn=system.topology["topic_arn"],
                database_url=system.database_url,
            )
        )
        senders.stop(result.pop("sender"))
        machine = bench.machine_line() + f" (at the start: {load_before})"

    print_report(result, args, machine)
    print(json.dumps({"benchmark": "sender", "machine": machine, "emulator": args.emulator, "settings": vars(args), **result}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
