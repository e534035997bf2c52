"""The load generator: keep-alive HTTPS connections that present a client certificate.

Run as its own process (``python -m bench.load``) so that its CPU never counts as the server's.
It speaks just enough HTTP/1.1 for these benchmarks: one prepared request sent over and over,
answers with a Content-Length (uvicorn always sends one for JSON and 204 answers).

Why not wrk, h2load or ab: none of Debian's can present a client certificate, and the gateway
refuses every handshake without one. Why not httpx or aiohttp: on a 2-core machine the load
generator takes its CPU from the servers it measures, and a bare asyncio client on uvloop spends
several times less per request than either, so the servers get more of the cores.

Two ways to drive:

- closed loop (``--connections N``): N connections, each sends its next request as soon as the
  previous answer arrives; measures capacity.
- open loop (``--rate R``): requests start on a fixed schedule, R per second, whatever the
  answers do, on as many connections as it takes (up to ``--max-connections``); latency counts
  from the scheduled start, so a server that falls behind shows it (no coordinated omission).

It prints one line, ``window FROM UNTIL`` (time.monotonic values, the same clock in every
process), as soon as the connections are open and the first requests go out, so the caller can
sample the server's CPU at the start and at the window's edges; and writes the results as JSON to
``--out``: statuses and latencies of the requests that ended inside the window, and the statuses
of all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import uvloop

REQUEST_TIMEOUT_SECONDS = 10.0


class ProtocolError(Exception):
    pass


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self.open = True

    @classmethod
    async def connect(cls, host: str, port: int, context: ssl.SSLContext) -> Connection:
        reader, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname="localhost")
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        self._writer.write(request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise ProtocolError("chunked answers are not supported")
            elif name == b"connection" and value.strip().lower() == b"close":
                self.open = False
        body = await self._reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.open = False
        self._writer.close()


@dataclass
class Results:
    window_from: float
    window_until: float
    collect_ids: bool
    # Open loop: every scheduled request counts, also one answered after the window (its
    # latency is what overload looks like); closed loop: the window is a sample of a steady state.
    count_late: bool = False
    statuses: Counter[str] = field(default_factory=Counter)
    all_statuses: Counter[str] = field(default_factory=Counter)  # every request, warm-up and late ones too
    latencies: dict[str, list[float]] = field(default_factory=dict)  # by status class: "2xx", "4xx", ...
    accepted_ids: list[str] = field(default_factory=list)
    connections_opened: int = 0
    waited_for_connection: int = 0  # open loop: requests that found every allowed connection busy
    late: int = 0  # requests that ended after the window
    last_end: float = 0.0

    def record(self, started: float, ended: float, outcome: str, body: bytes = b"") -> None:
        self.all_statuses[outcome] += 1
        self.last_end = max(self.last_end, ended)
        if ended < self.window_from:
            return
        if ended > self.window_until:
            self.late += 1
            if not self.count_late:
                return
        self.statuses[outcome] += 1
        kind = f"{outcome[0]}xx" if outcome.isdigit() else outcome
        self.latencies.setdefault(kind, []).append(ended - started)
        if self.collect_ids and outcome == "201":
            self.accepted_ids.append(json.loads(body)["id"])

    def as_dict(self) -> dict:
        seconds = self.window_until - self.window_from
        return {
            "window_seconds": seconds,
            # From the window's start to the last answer: longer than the window in the open loop
            # when answers lag the schedule.
            "span_seconds": max(seconds, self.last_end - self.window_from),
            "statuses": dict(self.statuses),
            "all_statuses": dict(self.all_statuses),
            "per_second": {status: count / seconds for status, count in self.statuses.items()},
            "latency_ms": {kind: summarize(values) for kind, values in self.latencies.items()},
            "connections_opened": self.connections_opened,
            "waited_for_connection": self.waited_for_connection,
            "ended_after_window": self.late,
            "accepted_ids": self.accepted_ids,
        }


def summarize(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pick(quantile: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] * 1000, 2)

    return {"count": len(ordered), "p50": pick(0.50), "p90": pick(0.90), "p99": pick(0.99), "max": pick(1.0)}


def build_request(method: str, path: str, body: bytes) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def send(connection: Connection, request: bytes) -> tuple[str, bytes]:
    try:
        status, body = await asyncio.wait_for(connection.exchange(request), REQUEST_TIMEOUT_SECONDS)
    except TimeoutError:
        connection.close()
        return "timeout", b""
    except (OSError, asyncio.IncompleteReadError, ProtocolError, ValueError):
        connection.close()
        return "connection_error", b""
    return str(status), body


async def closed_loop(args: argparse.Namespace, context: ssl.SSLContext, request: bytes) -> Results:
    connections = await asyncio.gather(*(Connection.connect(args.host, args.port, context) for _ in range(args.connections)))
    start = time.monotonic()
    results = Results(start + args.warmup, start + args.warmup + args.duration, args.collect_ids, connections_opened=len(connections))
    announce(results)

    async def worker(connection: Connection) -> None:
        while time.monotonic() < results.window_until:
            if not connection.open:
                try:
                    connection = await Connection.connect(args.host, args.port, context)
                    results.connections_opened += 1
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
            started = time.monotonic()
            outcome, body = await send(connection, request)
            results.record(started, time.monotonic(), outcome, body)
        connection.close()

    await asyncio.gather(*(worker(connection) for connection in connections))
    return results


async def open_loop(args: argparse.Namespace, context: ssl.SSLContext, request: bytes) -> Results:
    idle: list[Connection] = [await Connection.connect(args.host, args.port, context) for _ in range(args.connections)]
    busy = 0
    freed = asyncio.Event()
    start = time.monotonic()
    results = Results(
        start + args.warmup, start + args.warmup + args.duration, args.collect_ids, count_late=True, connections_opened=len(idle)
    )
    announce(results)

    async def one(scheduled: float) -> None:
        try:
            await attempt(scheduled)
        except asyncio.CancelledError:
            # Still waiting for a connection or an answer when the run gave up on it.
            results.record(scheduled, time.monotonic(), "unanswered")
            raise

    async def attempt(scheduled: float) -> None:
        nonlocal busy
        if not idle and busy >= args.max_connections:
            results.waited_for_connection += 1
        while not idle and busy >= args.max_connections:
            freed.clear()
            await freed.wait()
        busy += 1
        try:
            connection = idle.pop() if idle else None
            if connection is None:
                try:
                    connection = await Connection.connect(args.host, args.port, context)
                    results.connections_opened += 1
                except OSError:
                    results.record(scheduled, time.monotonic(), "connection_error")
                    return
            outcome, body = await send(connection, request)
            results.record(scheduled, time.monotonic(), outcome, body)
            if connection.open:
                idle.append(connection)
        finally:
            busy -= 1
            freed.set()

    tasks: set[asyncio.Task[None]] = set()
    interval = 1.0 / args.rate
    sent = 0
    while (scheduled := start + sent * interval) < results.window_until:
        delay = scheduled - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        sent += 1
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT_SECONDS + 5)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    for connection in idle:
        connection.close()
    return results


def announce(results: Results) -> None:
    print(f"window {results.window_from!r} {results.window_until!r}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--body", required=True, help="the JSON body of every request")
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--connections", type=int, default=64, help="closed loop: this many; open loop: opened up front")
    parser.add_argument("--rate", type=float, help="open loop: requests per second")
    parser.add_argument("--max-connections", type=int, default=512, help="open loop: at most this many connections")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--collect-ids", action="store_true", help="keep the id of every 201 answer")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    context = ssl.create_default_context(cafile=args.ca)
    context.load_cert_chain(args.cert, args.key)
    request = build_request("POST", args.path, args.body.encode())
    drive = open_loop if args.rate else closed_loop
    results = uvloop.run(drive(args, context, request))
    args.out.write_text(json.dumps(results.as_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
