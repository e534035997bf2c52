"""The sender benchmark's baseline: a bare aiohttp client posting to chat.postMessage.

``N`` workers, each posting its next message as soon as the previous answer arrives, for
``--seconds``: what ``N`` slots can get out of this WireMock on this machine right now, with no
queue, no database and no Slack SDK. Run as its own process (``python -m bench.bare_slack_client``)
so that its CPU is not the benchmark's; prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import aiohttp
import uvloop


async def drive(url: str, concurrency: int, warmup: float, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    failures = 0
    start = time.monotonic()
    window_from, window_until = start + warmup, start + warmup + seconds

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker(index: int) -> None:
            nonlocal failures
            sequence = 0
            while (started := time.monotonic()) < window_until:
                sequence += 1
                body = {"channel": f"CBASE{index:04d}{sequence:08d}", "text": "baseline"}
                async with session.post(url, json=body, headers={"Authorization": "Bearer xoxb-bench"}) as response:
                    payload = await response.json(content_type=None)
                ended = time.monotonic()
                if window_from <= ended <= window_until:
                    if response.status == 200 and payload.get("ok"):
                        latencies.append(ended - started)
                    else:
                        failures += 1

        await asyncio.gather(*(worker(index) for index in range(concurrency)))
    return {
        "per_second": len(latencies) / seconds,
        "mean_latency_seconds": sum(latencies) / len(latencies) if latencies else float("nan"),
        "failures": failures,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the chat.postMessage URL")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    print(json.dumps(uvloop.run(drive(args.url, args.concurrency, args.warmup, args.seconds))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
