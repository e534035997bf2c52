"""Scale-out benchmark: one Slack sender against two on the same queue, when the provider's latency
(not CPU) is the limit; with ``--gateway``, one gateway process against two behind one port.

    python -m bench.scale_out                 # senders: 1 vs 2 replicas, concurrency 16 each, Slack at 200 ms
    python -m bench.scale_out --gateway       # gateways: 1 vs 2 processes sharing one port (SO_REUSEPORT)

**Senders.** Little's law bounds a replica at concurrency / latency = 16 / 0.2 s = 80 messages/s, so
two replicas on one queue should deliver about twice what one does (target: at least 1.9x, issue
15) while the machine has CPU to spare (at 200 ms the work is waiting). The stack is bench/system.py's
(a fresh database, the AWS emulator, WireMock answering chat.postMessage after ``--delay-ms``, its
request journal on); the senders are ``python -m sender_slack`` with production settings but the
rate limit (raised so it never binds; each message goes to a Slack channel of its own anyway). A
phase feeds the queue as bench/sender.py's feeder does (written to Postgres as the gateway writes,
published in PublishBatch of 10, a backlog kept ahead), warms up, then counts the deliveries whose
``sent_at`` falls in the measured window. Between the phases everything published is sent and the
replicas are stopped. At the end, WireMock's journal says how many posts each Slack channel (so
each notification) received: a notification posted twice would be a double send.

**Gateways.** Two ``python -m gateway`` processes bind the same port with SO_REUSEPORT (the
``GATEWAY_REUSE_PORT`` setting), so the kernel spreads new connections between them. On a 2-core
machine that also runs Postgres, the SNS sink and the load generator the second process can only
take CPU from those: the figure says what the host allows, not how the gateway scales on cores
of its own. Each phase drives ``bench/load.py`` closed loop (64 connections) and reports accepted/s
and the gateways' CPU per accepted notification.

Prints a table for people and, last, one JSON line for machines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
import time
from collections import Counter
from typing import Any

import asyncpg

from bench.sender import Feeder, wait_until_sent
from bench.system import EMULATOR_NAMES, ProcessGauge, bench_system, load_average, work_directory
from harness.database import make_notification
from harness.senders import SenderProcess
from harness.slack import SLACK_POST_PATH, slack_ok
from shared.aws import aws_clients
from shared.channels import Channel
from shared.settings import ServiceSettings
from shared.topology import queues_for
from stack.wiremock_server import WireMock

TARGET_RATIO = 1.9


# ---------------------------------------------------------------- senders


async def sample_depth(sqs: Any, queue_url: str, depths: list[int], stop: asyncio.Event) -> None:
    """The queue's visible depth every half second: at 0 the replicas were starved (the emulator, not they, was the limit)."""
    while not stop.is_set():
        attributes = await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
        depths.append(int(attributes["Attributes"]["ApproximateNumberOfMessages"]))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.5)


async def sender_phase(
    *, replicas: list[SenderProcess], feeder: Feeder, connection: asyncpg.Connection, sqs: Any, queue_url: str, args: argparse.Namespace
) -> dict[str, Any]:
    """Feed the queue while ``replicas`` deliver; delivered/s in the measured window and their CPU."""
    gauges = [ProcessGauge(sender.process.name, sender.process.pid) for sender in replicas]  # type: ignore[arg-type]
    stop, window_over = asyncio.Event(), asyncio.Event()
    feeding = asyncio.create_task(feeder.run(stop))
    await asyncio.sleep(args.warmup)
    depths: list[int] = []
    sampling = asyncio.create_task(sample_depth(sqs, queue_url, depths, window_over))
    first_wall, first_cpu = time.time(), [gauge.cpu_seconds() for gauge in gauges]
    await asyncio.sleep(args.duration)
    last_wall, last_cpu = time.time(), [gauge.cpu_seconds() for gauge in gauges]
    window_over.set()
    stop.set()
    await asyncio.gather(feeding, sampling)
    await wait_until_sent(feeder, connection, timeout=60)
    delivered = await connection.fetchval(
        "SELECT count(*) FROM deliveries WHERE status = 'sent' AND sent_at >= to_timestamp($1) AND sent_at < to_timestamp($2)",
        first_wall, last_wall,
    )
    seconds = last_wall - first_wall
    cpu = sum(last - first for first, last in zip(first_cpu, last_cpu, strict=True))
    return {
        "replicas": len(replicas),
        "delivered": delivered,
        "seconds": seconds,
        "delivered_per_second": delivered / seconds,
        "bound_per_second": len(replicas) * args.concurrency / (args.delay_ms / 1000),
        "cpu_ms_per_message": 1000 * cpu / delivered if delivered else float("inf"),
        "cpu_percent": 100 * cpu / seconds,
        "rss_mb": [round(gauge.rss_mb(), 1) for gauge in gauges],
        "min_visible_depth": min(depths, default=0),
        "median_visible_depth": sorted(depths)[len(depths) // 2] if depths else 0,
        "load_average": load_average(),
    }


def posts_per_channel(wiremock: WireMock) -> Counter[str]:
    """chat.postMessage requests WireMock received, by Slack channel (one notification each)."""
    found = wiremock.find_requests({"method": "POST", "urlPath": SLACK_POST_PATH})
    return Counter(json.loads(entry.get("body") or "{}").get("channel", "?") for entry in found)


def senders_scale_out(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    with work_directory("bench-scale-out-", keep=args.keep) as (work_dir, cleanup):
        bench = bench_system(work_dir, cleanup, emulator=args.emulator, wiremock_journal=True)
        system = bench.system
        system.slack.answer_every_post(slack_ok(delay_ms=args.delay_ms))
        bound_two = 2 * args.concurrency / (args.delay_ms / 1000)
        count = math.ceil(1.5 * bound_two * 2 * (args.warmup + args.duration + 5)) + args.backlog
        messages = [
            make_notification(channels=(Channel.SLACK,), name=f"scale-{index}", slack_id=f"CS{index:08d}", phone_number=None, email=None)
            for index in range(count)
        ]
        system.db.insert_notifications(messages)
        senders = system.senders

        def launch() -> SenderProcess:
            return senders.launch(
                Channel.SLACK, CONCURRENCY=str(args.concurrency), RATE_LIMIT_PER_SECOND="1000000", RATE_LIMIT_BURST="1000000"
            )

        async def run() -> dict[str, Any]:
            settings = ServiceSettings(aws_endpoint_url=system.emulator.endpoint_url)
            connection = await asyncpg.connect(system.database_url)
            feeder_connection = await asyncpg.connect(system.database_url)
            phases = []
            try:
                async with aws_clients(settings, "sns", "sqs") as (sns, sqs):
                    queue_url = (await sqs.get_queue_url(QueueName=queues_for(Channel.SLACK).queue))["QueueUrl"]
                    feeder = Feeder(
                        sns=sns, topic_arn=system.topology["topic_arn"], messages=messages, connection=feeder_connection, backlog=args.backlog
                    )
                    for replica_count in (1, 2):
                        replicas = [launch() for _ in range(replica_count)]
                        for sender in replicas:
                            await asyncio.to_thread(senders.wait_ready, sender)
                        phase = await sender_phase(
                            replicas=replicas, feeder=feeder, connection=connection, sqs=sqs, queue_url=queue_url, args=args
                        )
                        for sender in replicas:
                            await asyncio.to_thread(senders.stop, sender)
                        phases.append(phase)
                        print(
                            f"  {replica_count} replica(s): {phase['delivered_per_second']:.1f} delivered/s "
                            f"(bound {phase['bound_per_second']:g}); load average {phase['load_average']}",
                            file=sys.stderr,
                        )
                    sent = await connection.fetchval("SELECT count(*) FROM deliveries WHERE status = 'sent'")
                    published = feeder.published
            finally:
                await connection.close()
                await feeder_connection.close()
            posts = await asyncio.to_thread(posts_per_channel, system.wiremock)
            return {
                "phases": phases,
                "ratio": phases[1]["delivered_per_second"] / phases[0]["delivered_per_second"],
                "published": published,
                "sent": sent,
                "slack_posts": sum(posts.values()),
                "notifications_posted": len(posts),
                "double_sends": sum(count - 1 for count in posts.values() if count > 1),
            }

        result = asyncio.run(run())
        return result, bench.machine_line()


def print_senders(result: dict[str, Any], args: argparse.Namespace, machine: str) -> None:
    print()
    print(
        f"Scale-out: python -m sender_slack, concurrency {args.concurrency} each, Slack (WireMock) answering after {args.delay_ms} ms; "
        f"one replica, then two on the same queue; {args.duration:g} s measured per phase after {args.warmup:g} s of feeding"
    )
    print(machine)
    print()
    header = f"{'replicas':<10}{'delivered/s':>12}{'bound/s':>9}{'of bound':>10}{'CPU ms/msg':>12}{'CPU':>6}  RSS MB      queue min/median  load average"
    print(header)
    print("-" * len(header))
    for phase in result["phases"]:
        print(
            f"{phase['replicas']:<10}{phase['delivered_per_second']:>12.1f}{phase['bound_per_second']:>9.0f}"
            f"{phase['delivered_per_second'] / phase['bound_per_second']:>10.2f}{phase['cpu_ms_per_message']:>12.2f}"
            f"{phase['cpu_percent']:>5.0f}%  {', '.join(f'{rss:.0f}' for rss in phase['rss_mb']):<12}"
            f"{phase['min_visible_depth']:>5}/{phase['median_visible_depth']:<12}{phase['load_average']}"
        )
    verdict = "meets" if result["ratio"] >= TARGET_RATIO else "MISSES"
    print()
    if any(phase["min_visible_depth"] == 0 for phase in result["phases"]):
        print("the queue stood EMPTY at times: the emulator (or the feeder through it) did not keep up, and that phase measured it")
    print(f"two replicas / one: {result['ratio']:.2f}x ({verdict} the target >= {TARGET_RATIO:g}x)")
    print(
        f"double sends: {result['double_sends']} (WireMock got {result['slack_posts']} posts for {result['notifications_posted']} "
        f"notifications; Postgres: {result['sent']} sent of {result['published']} published)"
    )


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--gateway", action="store_true", help="gateways behind one port (SO_REUSEPORT) instead of senders")
    parser.add_argument("--emulator", choices=EMULATOR_NAMES, default="moto", help="senders: the AWS emulator (default moto)")
    parser.add_argument("--concurrency", type=int, default=16, help="senders: SLACK_SENDER_CONCURRENCY of each replica (default 16)")
    parser.add_argument("--delay-ms", type=int, default=200, help="senders: WireMock's delay on chat.postMessage (default 200)")
    parser.add_argument("--backlog", type=int, default=200, help="senders: messages published and not yet sent (default 200)")
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per phase (default 15)")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each phase (default 3)")
    parser.add_argument("--rounds", type=int, default=2, help="--gateway: rounds of (one process, two) (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (service logs)")
    args = parser.parse_args()

    if args.gateway:
        from bench.gateway import gateways_scale_out, print_gateways_scale_out

        result, machine = gateways_scale_out(args)
        print_gateways_scale_out(result, args, machine)
        name = "scale_out_gateway"
    else:
        result, machine = senders_scale_out(args)
        print_senders(result, args, machine)
        name = "scale_out_senders"
    print(json.dumps({"benchmark": name, "machine": machine, "settings": vars(args), **result}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
