"""Scheduled sends' release latency: how long after its ``send_at`` a scheduled notification
reaches the channel's queue, with several gateway replicas sharing the work.

    python -m bench.scheduled                    # 600 notifications over 60 s, 2 gateways
    python -m bench.scheduled --replicas 1 --count 300 --spread 30

The system runs as processes (bench/system.py): ``--replicas`` gateways with the gateway's own
production settings (the outbox relay polling every ``GATEWAY_OUTBOX_POLL_INTERVAL_SECONDS``, 1
s), moto, and a fresh database on DATABASE_URL's server (an embedded Postgres when unset); no
sender runs, so the queue keeps what SNS delivered. One recipient with a Slack id only: each
notification is one SQS message. The client posts ``--count`` notifications, to the gateways in
turn, each with a ``send_at`` spread evenly over ``--spread`` seconds starting ``--lead`` seconds
after the first POST (so every one is accepted before it is due), then reads the queue.

Two figures per notification, both against its ``send_at``:

- **released**: when the relay's claim moved its delivery from ``scheduled`` to ``pending`` (the
  delivery's ``updated_at``, Postgres's clock): the moment it could no longer be cancelled;
- **in the queue**: SQS's ``SentTimestamp`` of the message (moto's clock, milliseconds): the
  relay's publish to SNS and SNS's fan-out to the queue included. This is the one the target is
  on: p99 under 1 s.

Also counted: messages per notification (exactly one each: missing ones and copies are
reported), and any released before its time. All clocks are this machine's. Prints a table for
people and, last, one JSON line for machines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from bench.system import bench_system, load_average, percentiles, work_directory
from harness.aws import aws_client
from harness.gateway import PRODUCTION_GATEWAY_SETTINGS, GatewayProcess
from shared.channels import Channel
from shared.topology import queues_for

TARGET_P99_SECONDS = 1.0


async def post_all(gateways: list[GatewayProcess], *, count: int, lead: float, spread: float) -> dict[str, datetime]:
    """Post ``count`` scheduled notifications to the gateways in turn; their send_at by id."""
    first = datetime.now(UTC) + timedelta(seconds=lead)
    clients = [gateway.async_client(limits=httpx.Limits(max_connections=8)) for gateway in gateways]
    slots = asyncio.Semaphore(16)

    async def post(index: int) -> tuple[str, datetime]:
        send_at = first + timedelta(seconds=spread * index / max(1, count - 1))
        async with slots:
            answer = await clients[index % len(clients)].post(
                "/notifications", json={"recipient": "bench-scheduled", "message": f"scheduled #{index}", "send_at": send_at.isoformat()}
            )
        answer.raise_for_status()
        return answer.json()["id"], send_at

    try:
        return dict(await asyncio.gather(*(post(index) for index in range(count))))
    finally:
        for client in clients:
            await client.aclose()


def read_queue(endpoint_url: str, expected: int, *, timeout: float) -> dict[str, list[int]]:
    """The SentTimestamps (ms) of the Slack queue's messages, by notification id, until ``expected``
    distinct ids have arrived and the queue has stayed empty for 3 s, or ``timeout``."""
    sqs = aws_client("sqs", endpoint_url)
    url = sqs.get_queue_url(QueueName=queues_for(Channel.SLACK).queue)["QueueUrl"]
    seen: dict[str, list[int]] = {}
    deadline, quiet_since = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["SentTimestamp"], WaitTimeSeconds=1).get(
            "Messages", []
        )
        for message in messages:
            seen.setdefault(json.loads(message["Body"])["notification_id"], []).append(int(message["Attributes"]["SentTimestamp"]))
        if messages:
            sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
            quiet_since = None
        elif len(seen) >= expected:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 3:
                break
    return seen


async def released(database_url: str, ids: list[str]) -> dict[str, datetime | None]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT notification_id::text AS id, status, updated_at FROM deliveries WHERE notification_id = ANY($1::uuid[])",
            [uuid.UUID(i) for i in ids],
        )
    finally:
        await connection.close()
    return {row["id"]: None if row["status"] == "scheduled" else row["updated_at"] for row in rows}


def analyse(send_ats: dict[str, datetime], queued: dict[str, list[int]], claims: dict[str, datetime | None]) -> dict[str, Any]:
    in_queue = [min(stamps) / 1000 - send_ats[i].timestamp() for i, stamps in queued.items() if i in send_ats]
    release = [(at - send_ats[i]).total_seconds() for i, at in claims.items() if at is not None]
    copies = Counter(len(queued.get(i, [])) for i in send_ats)
    return {
        "notifications": len(send_ats),
        "in_queue_seconds": {key: round(value, 4) for key, value in percentiles(in_queue).items()},
        "released_seconds": {key: round(value, 4) for key, value in percentiles(release).items()},
        "released_early": sum(value < 0 for value in release),
        "queued_early": sum(value < 0 for value in in_queue),
        "missing": copies.get(0, 0),
        "duplicated": sum(count for copies_, count in copies.items() if copies_ > 1),
        "still_scheduled": sum(at is None for at in claims.values()),
    }


def print_report(result: dict[str, Any], args: argparse.Namespace, machine: str) -> None:
    queue, release = result["in_queue_seconds"], result["released_seconds"]
    met = "met" if queue.get("p99", float("inf")) < TARGET_P99_SECONDS and not result["missing"] and not result["duplicated"] else "NOT met"
    print(f"\nScheduled sends: {result['notifications']} over {args.spread:g} s, {args.replicas} gateway replica(s)")
    print(machine)
    print(f"{'after send_at (s)':<24}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}")
    for label, figures in (("released (claim)", release), ("in the queue (SQS)", queue)):
        print(f"{label:<24}" + "".join(f"{figures.get(key, float('nan')):>9.3f}" for key in ("p50", "p90", "p99", "max")))
    print(
        f"missing {result['missing']}, duplicated {result['duplicated']}, released early {result['released_early']}, "
        f"still scheduled {result['still_scheduled']}; target p99 in the queue < {TARGET_P99_SECONDS:g} s, exactly once: {met}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--count", type=int, default=600, help="scheduled notifications (default 600)")
    parser.add_argument("--spread", type=float, default=60.0, help="seconds their send_at times are spread over (default 60)")
    parser.add_argument("--lead", type=float, default=15.0, help="seconds from the first POST to the first send_at (default 15)")
    parser.add_argument("--replicas", type=int, default=2, help="gateway replicas (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (certificates, service logs)")
    args = parser.parse_args()

    with work_directory("bench-scheduled-", keep=args.keep) as (work_dir, cleanup):
        bench = bench_system(work_dir, cleanup, emulator="moto")
        system = bench.system
        settings = {**PRODUCTION_GATEWAY_SETTINGS, "topic_arn": system.topology["topic_arn"]}
        gateways = [system.start_gateway(name=f"gateway-{n}", settings=settings) for n in range(args.replicas)]
        with gateways[0].client() as http:
            http.put("/recipients/bench-scheduled", json={"slack_id": "UBENCH0001"}).raise_for_status()
        load_before = load_average()
        print(f"  posting {args.count} scheduled notifications (load average {load_before})", file=sys.stderr)
        started = time.monotonic()
        send_ats = asyncio.run(post_all(gateways, count=args.count, lead=args.lead, spread=args.spread))
        posting = time.monotonic() - started
        if posting > args.lead:
            print(f"  posting took {posting:.1f} s, longer than --lead: the first ones were due before they were accepted", file=sys.stderr)
        queued = read_queue(system.emulator.endpoint_url, len(send_ats), timeout=args.lead + args.spread + 60)
        claims = asyncio.run(released(system.database_url, list(send_ats)))
        result = analyse(send_ats, queued, claims)
        result.update(posting_seconds=round(posting, 1), load_average_before=load_before, load_average_after=load_average())
        machine = bench.machine_line()
    print_report(result, args, machine)
    print(json.dumps({"benchmark": "scheduled", "machine": machine, "settings": vars(args), **result}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
