"""End-to-end benchmark: from the gateway's 201 to the provider, at a steady 50 notifications/s.

    python -m bench.end_to_end                          # on moto
    python -m bench.end_to_end --emulator localstack    # on LocalStack (host mode)

The whole system runs as processes (bench/system.py): the gateway (``python -m gateway`` over
mutual TLS, production settings as in bench/gateway.py), the three senders (production runtime
settings), moto or LocalStack, WireMock as Slack with no added delay, and a fresh database on
DATABASE_URL's server (an embedded Postgres when unset). A client presenting a certificate posts
``--rate`` notifications per second on a fixed schedule (open loop: a slow answer does not delay
the next request) for ``--duration`` seconds after a ``--warmup``, to ``--recipients`` recipients
in turn, each with a phone number, an email address and a Slack id: every notification is
delivered on all three channels.

What "received by the provider" is, per channel:

- SMS and email: the delivery's ``sent_at`` in Postgres, minus the wall-clock time at which the
  client read the 201. The emulators do not say precisely when they took a message (moto keeps no
  time; LocalStack keeps none for SMS and whole seconds for email); ``sent_at`` is the start of the
  sender's "sent" UPDATE, right after the provider answered, so it is the provider's receipt plus
  its answer plus one event-loop turn.
- Slack: the same, and WireMock's request journal (``loggedDate``, milliseconds), the time Slack's
  stand-in received the request: the provider-side truth. The difference between the two is what
  the sender spends between the provider and its bookkeeping.

All clocks are this machine's (Python's time.time(), Postgres's now(), the JVM's clock).

The latency the system adds (issue 15: p99 under 250 ms at the highest rate the emulator
sustains): per delivery, from the 201 to the moment the provider call began, so that the
provider's own time (its processing and its answer) is left out. It is everything between: the
gateway's publish, SNS's fan-out to the queue and the sender's receive (the emulator's share of
these included: it is the AWS side of our pipeline), the claim, the rate limit. The provider
call's duration per delivery is the ``provider_call_seconds`` of the sender's ``sent`` log line
(the same interval ``sender_send_duration_seconds`` observes, from the call to its answer).

- SMS and email: ``sent_at`` minus that call minus the 201. No provider-side time exists (moto
  keeps none), so this is an estimate: it counts, too, the bookkeeping between the provider's
  answer and the "sent" UPDATE's start (its statement batch, a pool connection), and leaves out
  the sender's share of the call itself (a pooled connection, writing the request), which the
  call's duration includes.
- Slack: WireMock's ``loggedDate`` minus the 201: the provider saw the request then, at the
  call's start (nothing is subtracted: the call's time all comes after it). The table also gives
  Slack's ``sent_at`` minus call figure: the SMS and email estimate applied where the truth is
  known, which shows how far that estimate is off.

Memory: the RSS of the gateway and of each sender, sampled every second under that load, and each
process's peak (VmHWM) at the end. Targets: p99 under 1 s on every channel from the 201 to the
provider, and under 250 ms of it added by the system; senders under 80 MB (issue 15), the gateway
under 150 MB.

By default the SMS and email senders' rate limits are raised to ``--provider-rate`` per second: their
defaults (20/s and 14/s, AWS's starting quotas) are below 50/s by design, and would measure the
quota, not the system. ``--default-rate-limits`` keeps them. Slack's limit (1/s per Slack channel,
bursts of 5) stays: with 500 recipients each Slack channel gets a message every 10 s.

Prints a table for people and, last, one JSON line for machines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import uvloop

from bench.load import REQUEST_TIMEOUT_SECONDS, Connection, build_request, send
from bench.system import (
    EMULATOR_NAMES,
    ProcessGauge,
    ProcessTreeGauge,
    bench_system,
    load_average,
    machine_busy_seconds,
    percentiles,
    work_directory,
)
from harness.gateway import PRODUCTION_GATEWAY_SETTINGS, GatewayProcess
from harness.metrics import scrape
from harness.senders import SenderProcess
from harness.slack import SLACK_POST_PATH
from shared.channels import Channel
from stack.wiremock_server import WireMock

TARGET_P99_SECONDS = 1.0
# Issue 15: what the system adds between the 201 and the provider, at the highest rate the emulator sustains.
TARGET_ADDED_P99_SECONDS = 0.25
TARGET_RSS_MB = {"gateway": 150.0, "sender": 80.0}
MAX_CONNECTIONS = 64
# uvicorn closes a keep-alive connection after 5 s idle; a client reusing one just then sees it
# closed under its request. Like real HTTP clients, drop connections idle for longer than this.
IDLE_CONNECTION_SECONDS = 4.0
DRAIN_TIMEOUT_SECONDS = 45.0
IDLE_SECONDS = 5.0
MESSAGE = "Your order has shipped (#{sequence})"


# ---------------------------------------------------------------- the client


@dataclass
class Request:
    sequence: int
    scheduled: float  # time.monotonic()
    in_window: bool
    status: str = ""
    notification_id: str | None = None
    answered_at: float | None = None  # time.time() when the 201 was read
    seconds: float | None = None  # from the scheduled start to the answer


@dataclass
class Client:
    """An open-loop mTLS client (bench/load.py's connections) that remembers when each 201 came."""

    port: int
    context: ssl.SSLContext
    recipients: int
    requests: list[Request] = field(default_factory=list)
    connections_opened: int = 0
    _idle: list[tuple[Connection, float]] = field(default_factory=list)  # with when each went idle
    _busy: int = 0

    async def run(self, *, rate: float, warmup: float, duration: float) -> tuple[float, float]:
        """Post on schedule; returns the measured window (time.time() values)."""
        start = time.monotonic()
        wall_offset = time.time() - start
        window_from, window_until = start + warmup, start + warmup + duration
        tasks: set[asyncio.Task[None]] = set()
        sequence = 0
        while (scheduled := start + sequence / rate) < window_until:
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            request = Request(sequence, scheduled, in_window=scheduled >= window_from)
            self.requests.append(request)
            task = asyncio.create_task(self._post(request))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sequence += 1
        if tasks:
            await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT_SECONDS + 5)
        for connection, _since in self._idle:
            connection.close()
        return window_from + wall_offset, window_until + wall_offset

    def _idle_connection(self) -> Connection | None:
        while self._idle:
            connection, since = self._idle.pop()
            if time.monotonic() - since < IDLE_CONNECTION_SECONDS:
                return connection
            connection.close()
        return None

    async def _post(self, request: Request) -> None:
        body = json.dumps(
            {
                "recipient": f"bench-{request.sequence % self.recipients}",
                "message": MESSAGE.format(sequence=request.sequence),
                "subject": "Order update",
            }
        ).encode()
        connection = self._idle_connection()
        if connection is None:
            if self._busy >= MAX_CONNECTIONS:
                request.status = "no_connection"
                return
            try:
                connection = await Connection.connect("127.0.0.1", self.port, self.context)
                self.connections_opened += 1
            except OSError:
                request.status = "connection_error"
                return
        self._busy += 1
        try:
            status, answer = await send(connection, build_request("POST", "/notifications", body))
        finally:
            self._busy -= 1
        request.status, request.seconds = status, time.monotonic() - request.scheduled
        if status == "201":
            request.answered_at = time.time()
            request.notification_id = json.loads(answer)["id"]
        if connection.open:
            self._idle.append((connection, time.monotonic()))


# ---------------------------------------------------------------- memory


@dataclass
class MemorySampler:
    gauges: list[ProcessGauge]
    rss_mb: dict[str, list[float]] = field(default_factory=dict)
    idle_rss_mb: dict[str, float] = field(default_factory=dict)  # ready, before the load
    cpu_start: dict[str, float] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event) -> None:
        self.idle_rss_mb = {gauge.name: gauge.rss_mb() for gauge in self.gauges}
        self.cpu_start = {gauge.name: gauge.cpu_seconds() for gauge in self.gauges}
        while not stop.is_set():
            for gauge in self.gauges:
                self.rss_mb.setdefault(gauge.name, []).append(gauge.rss_mb())
            try:
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            except TimeoutError:
                pass

    def summary(self, seconds: float) -> dict[str, dict[str, float]]:
        return {
            gauge.name: {
                "rss_mb_idle": self.idle_rss_mb[gauge.name],
                "rss_mb_median": sorted(self.rss_mb[gauge.name])[len(self.rss_mb[gauge.name]) // 2],
                "rss_mb_max_sampled": max(self.rss_mb[gauge.name]),
                "peak_rss_mb": gauge.peak_rss_mb(),
                "cpu_percent": 100 * (gauge.cpu_seconds() - self.cpu_start[gauge.name]) / seconds,
            }
            for gauge in self.gauges
        }


# ---------------------------------------------------------------- one run


async def drive_and_sample(
    *, args: argparse.Namespace, gateway: GatewayProcess, gauges: list[ProcessGauge], budget: list[ProcessTreeGauge | ProcessGauge]
) -> tuple[Client, dict[str, Any], dict[str, Any]]:
    # What the system burns doing nothing (long polls, relays, reporters), to tell it from the load's cost.
    idle_before = {gauge.name: gauge.cpu_seconds() for gauge in budget}
    idle_machine = machine_busy_seconds()
    await asyncio.sleep(IDLE_SECONDS)
    idle = {gauge.name: (gauge.cpu_seconds() - idle_before[gauge.name]) / IDLE_SECONDS for gauge in budget}
    idle_machine = (machine_busy_seconds() - idle_machine) / IDLE_SECONDS
    client = Client(gateway.port, gateway.ssl_context("client"), args.recipients)
    sampler = MemorySampler(gauges)
    stop = asyncio.Event()
    sampling = asyncio.create_task(sampler.run(stop))
    started = time.monotonic()
    cpu_before = {gauge.name: gauge.cpu_seconds() for gauge in budget}
    machine_before = machine_busy_seconds()
    await client.run(rate=args.rate, warmup=args.warmup, duration=args.duration)
    seconds = time.monotonic() - started
    cores = {gauge.name: (gauge.cpu_seconds() - cpu_before[gauge.name]) / seconds for gauge in budget}
    machine = (machine_busy_seconds() - machine_before) / seconds
    stop.set()
    await sampling
    ours = sum(value for value in cores.values() if value == value)  # NaN: a process that is gone
    ours_idle = sum(value for value in idle.values() if value == value)
    cpu = {
        "cores": cores,
        "idle_cores": idle,
        "ours": ours,
        "ours_idle": ours_idle,
        "machine": machine,
        "machine_idle_period": idle_machine,
        "others": machine - ours,
        "cpu_ms_per_notification": 1000 * ours / args.rate,
        "cpu_ms_per_notification_over_idle": 1000 * (ours - ours_idle) / args.rate,
    }
    return client, cpu, sampler.summary(seconds)


async def wait_until_final(database_url: str, ids: list[str], expected: int) -> float | None:
    """Seconds until every delivery of ``ids`` is sent or failed (None: not within the timeout)."""
    started = time.monotonic()
    connection = await asyncpg.connect(database_url)
    try:
        while True:
            done = await connection.fetchval(
                "SELECT count(*) FROM deliveries WHERE notification_id = ANY($1::uuid[]) AND status IN ('sent', 'failed')", ids
            )
            if done >= expected:
                return time.monotonic() - started
            if time.monotonic() - started > DRAIN_TIMEOUT_SECONDS:
                return None
            await asyncio.sleep(0.5)
    finally:
        await connection.close()


async def deliveries(database_url: str, ids: list[str]) -> list[dict[str, Any]]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT notification_id::text AS id, channel, status, attempts, extract(epoch FROM sent_at)::float8 AS sent_at"
            " FROM deliveries WHERE notification_id = ANY($1::uuid[])",
            ids,
        )
    finally:
        await connection.close()
    return [dict(row) for row in rows]


def slack_posts(wiremock: WireMock) -> list[tuple[float, str]]:
    """(loggedDate in seconds, text) of every chat.postMessage WireMock received."""
    posts = []
    for entry in wiremock.find_requests({"method": "POST", "urlPath": SLACK_POST_PATH}):
        body = json.loads(entry.get("body") or "{}")
        posts.append((entry["loggedDate"] / 1000, body.get("text") or ""))
    return posts


def provider_calls(senders: list[SenderProcess]) -> dict[tuple[str, str], float]:
    """(notification id, channel) -> seconds of the provider call that sent it, from each sender's
    "sent" log line (its ``provider_call_seconds``)."""
    calls: dict[tuple[str, str], float] = {}
    for sender in senders:
        with sender.process.log_path.open(encoding="utf-8", errors="replace") as log:
            for line in log:
                if not line.startswith("{") or '"sent"' not in line:
                    continue
                record = json.loads(line)
                if record.get("event") == "sent" and "provider_call_seconds" in record:
                    calls[(record["notification_id"], sender.channel.value)] = record["provider_call_seconds"]
    return calls


def analyse(
    client: Client, rows: list[dict[str, Any]], posts: list[tuple[float, str]], calls: dict[tuple[str, str], float]
) -> dict[str, Any]:
    measured = [r for r in client.requests if r.in_window]
    accepted = [r for r in measured if r.status == "201"]
    by_id = {r.notification_id: r for r in accepted}
    by_sequence = {r.sequence: r for r in accepted}
    channels: dict[str, Any] = {}
    for channel in Channel:
        mine = [row for row in rows if row["channel"] == channel.value and row["id"] in by_id]
        sent = [row for row in mine if row["status"] == "sent"]
        latencies = [row["sent_at"] - by_id[row["id"]].answered_at for row in sent]  # type: ignore[operator]
        timed = [(row, calls[(row["id"], channel.value)]) for row in sent if (row["id"], channel.value) in calls]
        channels[channel.value] = {
            "accepted": len(accepted),
            "sent": sum(1 for row in mine if row["status"] == "sent"),
            "failed": sum(1 for row in mine if row["status"] == "failed"),
            "not_final": sum(1 for row in mine if row["status"] not in ("sent", "failed")),
            "retried": sum(1 for row in mine if row["attempts"] > 1),
            "sent_at_seconds": percentiles(latencies),
            "provider_call_seconds": percentiles([seconds for _, seconds in timed]),
            # sent_at less the provider call: when the call began, give or take the bookkeeping
            # between the provider's answer and the "sent" UPDATE (the module docstring).
            "added_from_sent_at_seconds": percentiles(
                [row["sent_at"] - seconds - by_id[row["id"]].answered_at for row, seconds in timed]  # type: ignore[operator]
            ),
        }
        channels[channel.value]["added_seconds"] = channels[channel.value]["added_from_sent_at_seconds"]
    # Slack: WireMock's journal, matched by the message text (which carries the sequence number).
    received: dict[int, list[float]] = {}
    for logged_at, text in posts:
        if text.startswith(MESSAGE.split("{")[0]):
            sequence = int(text.rsplit("#", 1)[1].rstrip(")"))
            received.setdefault(sequence, []).append(logged_at)
    provider = [min(times) - by_sequence[s].answered_at for s, times in received.items() if s in by_sequence]  # type: ignore[operator]
    channels[Channel.SLACK.value]["provider_received_seconds"] = percentiles(provider)
    # Slack's stand-in says when it received the request: the call's start, measured at the provider.
    channels[Channel.SLACK.value]["added_seconds"] = channels[Channel.SLACK.value]["provider_received_seconds"]
    channels[Channel.SLACK.value]["provider_duplicates"] = sum(len(times) - 1 for s, times in received.items() if s in by_sequence)
    statuses: dict[str, int] = {}
    for request in measured:
        statuses[request.status] = statuses.get(request.status, 0) + 1
    return {
        "offered": len(measured),
        "statuses": statuses,
        "accept_seconds": percentiles([r.seconds for r in accepted if r.seconds is not None]),
        "channels": channels,
    }


def service_metrics(gateway: GatewayProcess, senders: list[SenderProcess]) -> dict[str, Any]:
    """What the services' own metrics say about the run: how the gateway published, how long providers took."""
    gateway_metrics = scrape(gateway.ops_url)
    result: dict[str, Any] = {
        "gateway_published": {path: gateway_metrics.get(("gateway_notifications_published_total", (("path", path),)), 0.0) for path in ("immediate", "relay")},
        "gateway_publish_failures": sum(v for (name, _), v in gateway_metrics.items() if name == "gateway_publish_failures_total"),
    }
    for sender in senders:
        metrics = scrape(sender.ops_url)
        labels = (("channel", sender.channel.value),)
        count = metrics.get(("sender_send_duration_seconds_count", labels), 0.0)
        result[sender.channel.value] = {
            "provider_call_mean_seconds": metrics.get(("sender_send_duration_seconds_sum", labels), 0.0) / count if count else float("nan"),
            "retried": metrics.get(("sender_messages_retried_total", labels), 0.0),
        }
    return result


# ---------------------------------------------------------------- report


def print_latencies(title: str, rows: list[tuple[str, str, dict[str, Any]]], *, target_seconds: float) -> None:
    """A table of (channel, label, percentiles) rows, each p99 against the target."""
    target = f"p99 < {1000 * target_seconds:g} ms" if target_seconds < 1 else f"p99 < {target_seconds:g} s"
    header = f"{'channel':<8}{title:<31}{'count':>7}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'max ms':>8}  {target:<14}"
    print(header)
    print("-" * len(header))
    for channel, label, stats in rows:
        if not stats.get("count"):
            print(f"{channel:<8}{label:<31}{0:>7}")
            continue
        verdict = "meets" if stats["p99"] < target_seconds else "MISSES"
        print(
            f"{channel:<8}{label:<31}{stats['count']:>7}{1000 * stats['p50']:>8.0f}{1000 * stats['p90']:>8.0f}"
            f"{1000 * stats['p99']:>8.0f}{1000 * stats['max']:>8.0f}  {verdict}"
        )


def print_report(result: dict[str, Any], args: argparse.Namespace, machine: str) -> None:
    print()
    print(
        f"End-to-end benchmark: {args.rate:g} notifications/s for {args.duration:g} s (after {args.warmup:g} s warm-up), open loop, "
        f"mTLS, {args.recipients} recipients each on SMS, email and Slack; WireMock with no added delay"
    )
    print(machine)
    print()
    accept = result["accept_seconds"]
    print(
        f"offered {result['offered']} in the window; answers {result['statuses']}; "
        f"201 in p50 {1000 * accept.get('p50', float('nan')):.0f} ms, p99 {1000 * accept.get('p99', float('nan')):.0f} ms"
    )
    print()
    print_latencies(
        "from the 201 to",
        [
            (channel, label, row[key])
            for channel, row in result["channels"].items()
            for label, key in (("sent_at (Postgres)", "sent_at_seconds"), ("WireMock received (loggedDate)", "provider_received_seconds"))
            if key in row
        ],
        target_seconds=TARGET_P99_SECONDS,
    )
    print()
    print("The latency the system adds: from the 201 to the provider call, the provider's own time left out")
    added = [
        (Channel.SMS.value, "sent_at - provider call", result["channels"][Channel.SMS.value]["added_seconds"]),
        (Channel.EMAIL.value, "sent_at - provider call", result["channels"][Channel.EMAIL.value]["added_seconds"]),
        (Channel.SLACK.value, "WireMock received (loggedDate)", result["channels"][Channel.SLACK.value]["added_seconds"]),
        (Channel.SLACK.value, "sent_at - provider call", result["channels"][Channel.SLACK.value]["added_from_sent_at_seconds"]),
    ]
    print_latencies("measured as", added, target_seconds=TARGET_ADDED_P99_SECONDS)
    print(
        "provider call per delivery (each sender's \"sent\" log line): "
        + ", ".join(
            f"{channel} p50 {1000 * row['provider_call_seconds'].get('p50', float('nan')):.0f} ms,"
            f" p99 {1000 * row['provider_call_seconds'].get('p99', float('nan')):.0f} ms"
            for channel, row in result["channels"].items()
        )
    )
    print()
    for channel, row in result["channels"].items():
        extra = f", {row['provider_duplicates']} duplicate posts" if "provider_duplicates" in row else ""
        print(
            f"{channel}: {row['sent']} sent, {row['failed']} failed, {row['not_final']} not final of {row['accepted']} accepted; "
            f"{row['retried']} needed more than one attempt{extra}"
        )
    services = result["services"]
    calls = ", ".join(f"{channel} {1000 * services[channel]['provider_call_mean_seconds']:.0f} ms" for channel in ("sms", "email", "slack"))
    print(
        f"gateway: {services['gateway_published']['immediate']:.0f} published right after the 201, "
        f"{services['gateway_published']['relay']:.0f} by the outbox relay, {services['gateway_publish_failures']:.0f} publish failures; "
        f"provider call on average: {calls}"
    )
    drained = f"{result['drain_seconds']:.1f} s" if result["drain_seconds"] is not None else f"NOT within {DRAIN_TIMEOUT_SECONDS:g} s"
    print(f"every delivery final {drained} after the last request")
    print()
    header = f"{'process':<14}{'RSS MB idle':>12}{'median':>8}{'max':>7}{'peak':>7}{'target':>8}{'CPU':>6}"
    print(header)
    print("-" * len(header))
    for name, row in result["memory"].items():
        target = TARGET_RSS_MB["gateway" if name == "gateway" else "sender"]
        verdict = "" if row["peak_rss_mb"] < target else "  OVER"
        print(
            f"{name:<14}{row['rss_mb_idle']:>12.0f}{row['rss_mb_median']:>8.0f}{row['rss_mb_max_sampled']:>7.0f}{row['peak_rss_mb']:>7.0f}"
            f"{'< ' + format(target, '.0f'):>8}{row['cpu_percent']:>5.0f}%{verdict}"
        )
    print("RSS: idle once ready, then sampled every second under the load; peak: the kernel's high-water mark (VmHWM); CPU: of one core, over the run")
    cpu = result["cpu"]
    print()
    header = f"{'CPU, cores':<22}{'idle':>7}{'loaded':>8}"
    print(header)
    print("-" * len(header))
    for name, value in cpu["cores"].items():
        print(f"{name:<22}{cpu['idle_cores'][name]:>7.2f}{value:>8.2f}")
    print(f"{'the system':<22}{cpu['ours_idle']:>7.2f}{cpu['ours']:>8.2f}")
    print(f"{'the whole machine':<22}{cpu['machine_idle_period']:>7.2f}{cpu['machine']:>8.2f}  (of {os.cpu_count()}; others: {cpu['others']:.2f} under the load)")
    print(
        f"the system's CPU per notification offered: {cpu['cpu_ms_per_notification']:.1f} ms "
        f"({cpu['cpu_ms_per_notification_over_idle']:.1f} ms over its idle cost); {args.rate:g}/s takes "
        f"{cpu['ours']:.2f} cores (idle: {IDLE_SECONDS:g} s before the load; loaded: while the client posted)"
    )
    print(f"load average at the end: {result['load_average_after']}; sender settings: {result['sender_settings']}")


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--emulator", choices=EMULATOR_NAMES, default="localstack", help="the AWS emulator (default localstack; moto publishes ~10/s; moto-patched: with the zero-loss test's fixes)")
    parser.add_argument("--rate", type=float, default=50.0, help="notifications per second (default 50)")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds (default 60)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before the measured window (default 5)")
    parser.add_argument("--recipients", type=int, default=500, help="recipients posted to in turn (default 500)")
    parser.add_argument("--provider-rate", type=float, default=100.0, help="SMS and email senders' rate limit per second (default 100)")
    parser.add_argument("--default-rate-limits", action="store_true", help="keep the SMS and email senders' default rate limits")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (certificates, service logs)")
    args = parser.parse_args()

    with work_directory("bench-e2e-", keep=args.keep) as (work_dir, cleanup):
        bench = bench_system(work_dir, cleanup, emulator=args.emulator)
        system = bench.system
        database_url, wiremock = system.database_url, system.wiremock
        # The gateway's own defaults, not the tests' quicker settings: this measures production.
        gateway = system.start_gateway(settings={**PRODUCTION_GATEWAY_SETTINGS, "topic_arn": system.topology["topic_arn"]})
        senders = system.senders
        rate_limits = {} if args.default_rate_limits else {
            "RATE_LIMIT_PER_SECOND": f"{args.provider_rate:g}", "RATE_LIMIT_BURST": f"{args.provider_rate:g}"
        }
        started = [
            senders.launch(Channel.SMS, **rate_limits),
            senders.launch(Channel.EMAIL, **rate_limits),
            senders.launch(Channel.SLACK),
        ]
        for sender in started:
            senders.wait_ready(sender)
        with gateway.client() as http:
            for index in range(args.recipients):
                contacts = {
                    "phone_number": f"+1415{2000000 + index:07d}",
                    "email": f"bench-{index}@example.com",
                    "slack_id": f"UB{index:08d}",
                }
                http.put(f"/recipients/bench-{index}", json=contacts).raise_for_status()
        gauges = [ProcessGauge("gateway", gateway.process.pid)] + [  # type: ignore[arg-type]
            ProcessGauge(f"sender_{sender.channel.value}", sender.process.pid) for sender in started  # type: ignore[arg-type]
        ]
        load_before = load_average()
        print(f"  driving {args.rate:g}/s for {args.warmup + args.duration:g} s (load average {load_before})", file=sys.stderr)
        budget: list[ProcessTreeGauge | ProcessGauge] = [ProcessTreeGauge(gauge.name, gauge.pid) for gauge in gauges] + [
            ProcessTreeGauge(args.emulator, system.emulator.process.pid),  # type: ignore[union-attr,arg-type]
            ProcessTreeGauge("wiremock", wiremock.process.pid),  # type: ignore[union-attr,arg-type]
        ]
        # This process alone: the services above are its children.
        budget.append(ProcessGauge("client (this process)", os.getpid()))  # type: ignore[arg-type]
        if bench.postgres_pid is not None:
            budget.append(ProcessTreeGauge("postgres", bench.postgres_pid))
        client, cpu, memory = uvloop.run(drive_and_sample(args=args, gateway=gateway, gauges=gauges, budget=budget))
        load_after = load_average()
        ids = [r.notification_id for r in client.requests if r.notification_id]
        drain_seconds = asyncio.run(wait_until_final(database_url, ids, 3 * len(ids)))
        rows = asyncio.run(deliveries(database_url, ids))
        services = service_metrics(gateway, started)
        result = analyse(client, rows, slack_posts(wiremock), provider_calls(started))
        result.update(
            drain_seconds=drain_seconds,
            services=services,
            cpu=cpu,
            memory=memory,
            load_average_before=load_before,
            load_average_after=load_after,
            connections_opened=client.connections_opened,
            sender_settings="SMS and email rate limits " + ("default (20/s, 14/s)" if args.default_rate_limits else f"raised to {args.provider_rate:g}/s"),
        )
        machine = bench.machine_line()

    print_report(result, args, machine)
    print(json.dumps({"benchmark": "end_to_end", "machine": machine, "emulator": args.emulator, "settings": vars(args), **result}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
