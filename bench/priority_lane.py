"""Priority lane benchmark: one-offs' 201 → provider while a 10,000-item bulk send is delivered,
beside the same figure with nothing else running.

    python -m bench.priority_lane                         # on LocalStack
    python -m bench.priority_lane --emulator moto-patched --bulk 2000

The whole system runs as processes (bench/system.py): the gateway (production settings), the
email sender (production runtime settings: 32 one-off slots, 8 bulk slots, SES's default 14/s
rate limit shared by both lanes), the emulator and WireMock, a fresh database. Recipients have
an email address only, so every notification is one email.

1. **Alone**: one-off notifications (``POST /notifications``) at ``--rate`` per second for
   ``--duration`` seconds.
2. **Beside bulk**: ``--bulk`` items posted as batches of 1,000 (``POST /notifications/batch``,
   the bulk lane), then the same one-offs for the same time while the sender works through them.

"Reaches the provider" is the delivery's ``sent_at`` (the sender's "sent" UPDATE right after
SES answered) minus the wall-clock time the client read the 201, as in bench/end_to_end.py.
Target: p99 under 2 s beside bulk. The bulk backlog still waiting at the end of phase 2 is
printed: a figure taken with the backlog drained would prove nothing.

Prints a table for people and, last, one JSON line for machines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from bench.system import EMULATOR_NAMES, bench_system, load_average, percentiles, work_directory
from harness.gateway import PRODUCTION_GATEWAY_SETTINGS, GatewayProcess
from shared.channels import Channel
from shared.settings import postgres_dsn

BATCH_SIZE = 1000


async def post_one_offs(gateway: GatewayProcess, *, rate: float, duration: float, recipients: int) -> list[tuple[str, float]]:
    """(id, wall-clock time the 201 was read) of one-offs posted on a fixed schedule (open loop)."""
    accepted: list[tuple[str, float]] = []

    async def post(client: httpx.AsyncClient, index: int) -> None:
        response = await client.post("/notifications", json={"recipient": f"lane-{index % recipients}", "message": f"one-off {index}"})
        if response.status_code == 201:
            accepted.append((response.json()["id"], time.time()))

    async with gateway.async_client() as client:
        start, tasks = time.monotonic(), []
        for index in range(int(rate * duration)):
            await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
            tasks.append(asyncio.create_task(post(client, index)))
        await asyncio.gather(*tasks)
    return accepted


async def post_bulk(gateway: GatewayProcess, *, items: int, recipients: int) -> int:
    """Post ``items`` as batches of up to 1,000; how many were accepted."""
    accepted = 0
    async with gateway.async_client() as client:
        for start in range(0, items, BATCH_SIZE):
            batch = [
                {"recipient": f"lane-{index % recipients}", "message": f"bulk {index}"} for index in range(start, min(items, start + BATCH_SIZE))
            ]
            response = await client.post("/notifications/batch", json={"notifications": batch}, timeout=120)
            response.raise_for_status()
            accepted += sum(1 for result in response.json()["results"] if result["status"] == 201)
    return accepted


async def latencies(database_url: str, accepted: list[tuple[str, float]], timeout: float = 120.0) -> list[float]:
    """Seconds from each one-off's 201 to its ``sent_at``, once all are sent (or the timeout passed)."""
    connection = await asyncpg.connect(postgres_dsn(database_url))
    try:
        ids = [UUID(notification_id) for notification_id, _ in accepted]
        deadline = time.monotonic() + timeout
        while True:
            rows = await connection.fetch(
                "SELECT notification_id, extract(epoch FROM sent_at) AS sent FROM deliveries WHERE notification_id = ANY($1) AND sent_at IS NOT NULL",
                ids,
            )
            if len(rows) == len(ids) or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
        sent = {str(row["notification_id"]): float(row["sent"]) for row in rows}
        return [sent[notification_id] - answered for notification_id, answered in accepted if notification_id in sent]
    finally:
        await connection.close()


async def bulk_pending(database_url: str) -> int:
    connection = await asyncpg.connect(postgres_dsn(database_url))
    try:
        return await connection.fetchval(
            "SELECT count(*) FROM deliveries AS d JOIN notifications AS n ON n.id = d.notification_id WHERE n.bulk AND d.status <> 'sent'"
        )
    finally:
        await connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--emulator", choices=EMULATOR_NAMES, default="localstack", help="the AWS emulator (default localstack)")
    parser.add_argument("--bulk", type=int, default=10_000, help="bulk items (default 10,000)")
    parser.add_argument("--rate", type=float, default=1.0, help="one-offs per second (default 1)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of one-offs per phase (default 60)")
    parser.add_argument("--recipients", type=int, default=200, help="recipients, each with an email address (default 200)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (certificates, service logs)")
    args = parser.parse_args()

    with work_directory("bench-lane-", keep=args.keep) as (work_dir, cleanup):
        bench = bench_system(work_dir, cleanup, emulator=args.emulator)
        system = bench.system
        gateway = system.start_gateway(
            settings={**PRODUCTION_GATEWAY_SETTINGS, "topic_arn": system.topology["topic_arn"], "max_in_flight_requests": 1024}
        )
        system.senders.start(Channel.EMAIL)
        with gateway.client() as http:
            for index in range(args.recipients):
                http.put(f"/recipients/lane-{index}", json={"email": f"lane-{index}@example.com"}).raise_for_status()
        load_before = load_average()
        print(f"  phase 1: one-offs alone, {args.rate:g}/s for {args.duration:g} s", file=sys.stderr)
        alone = asyncio.run(post_one_offs(gateway, rate=args.rate, duration=args.duration, recipients=args.recipients))
        alone_latencies = asyncio.run(latencies(system.database_url, alone))
        print(f"  phase 2: {args.bulk:,} bulk items, then one-offs beside them", file=sys.stderr)
        posting = time.monotonic()
        bulk_accepted = asyncio.run(post_bulk(gateway, items=args.bulk, recipients=args.recipients))
        bulk_post_seconds = time.monotonic() - posting
        beside = asyncio.run(post_one_offs(gateway, rate=args.rate, duration=args.duration, recipients=args.recipients))
        backlog = asyncio.run(bulk_pending(system.database_url))
        beside_latencies = asyncio.run(latencies(system.database_url, beside))
        bulk_sent = bulk_accepted - asyncio.run(bulk_pending(system.database_url))
        load_after = load_average()
        machine = bench.machine_line()

    result: dict[str, Any] = {
        "alone": {"posted": len(alone), **percentiles(alone_latencies)},
        "beside_bulk": {"posted": len(beside), **percentiles(beside_latencies)},
        "bulk": {
            "accepted": bulk_accepted,
            "post_seconds": round(bulk_post_seconds, 1),
            "backlog_after_one_offs": backlog,
            "sent_by_the_end": bulk_sent,
        },
        "load_average_before": load_before,
        "load_average_after": load_after,
    }
    print(f"\n{machine}\n")
    print("| One-offs, 201 → provider (s) | count | p50 | p90 | p99 | max |")
    print("|---|---|---|---|---|---|")
    for label, key in (("alone", "alone"), (f"beside {bulk_accepted:,} bulk items", "beside_bulk")):
        figures = result[key]
        if figures.get("count"):
            print(f"| {label} | {figures['count']} | {figures['p50']:.2f} | {figures['p90']:.2f} | {figures['p99']:.2f} | {figures['max']:.2f} |")
        else:
            print(f"| {label} | 0 | | | | |")
    print(
        f"\nbulk: {bulk_accepted:,} accepted in {bulk_post_seconds:.1f} s; {backlog:,} deliveries still waiting when the last "
        f"one-off was posted (target: p99 beside bulk < 2 s)"
    )
    print(json.dumps({"benchmark": "priority_lane", "machine": machine, "emulator": args.emulator, "settings": vars(args), **result}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
