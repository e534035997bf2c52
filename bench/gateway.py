"""Gateway benchmark: CPU per accepted notification, against a bare FastAPI mTLS endpoint.

    python -m bench.gateway               # the ratio: baseline and gateway side by side, rounds interleaved
    python -m bench.gateway --overload    # capacity, then twice that in an open loop: what the gateway answers
    python -m bench.gateway --profile     # py-spy on the gateway under load: where its CPU goes
    python -m bench.gateway --template    # the ratio for a template send too, in the same rounds

Each mode starts its own stack in a temporary directory: certificates from our CA, a fresh
database on DATABASE_URL's server (an embedded Postgres when unset), moto as the AWS emulator,
the real gateway process (``python -m gateway``, production settings) and the baseline
(``bench/baseline_app.py``). One load generator process (``bench/load.py``) drives each server in
turn with the same keep-alive mTLS connections and a small JSON body.

The figure that matters is a ratio taken in one run, because this machine is shared and noisy:
the gateway's CPU seconds (user + system, from the kernel's accounting of that process alone)
per accepted notification, divided by the baseline's CPU seconds per answered request. Rounds
alternate (baseline, gateway, baseline, ...) so that a neighbour's burst hits both.

Prints a table for people and, last, one JSON line for machines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.system import ProcessGauge, machine_line, work_directory
from harness.gateway import PRODUCTION_GATEWAY_SETTINGS, Certificates, GatewayProcess, start_gateway
from harness.postgres import fetch, postgres_server
from mtls import pki
from stack.moto import MotoServer
from stack.network import free_port, wait_for_port
from stack.prepare import prepare_system
from stack.processes import REPO_ROOT, ManagedProcess

RECIPIENT = "bench"
CONTACTS = {"phone_number": "+14155552671", "email": "bench@example.com", "slack_id": "U0123456789"}
BODY = json.dumps({"recipient": RECIPIENT, "message": "Your order has shipped"})
# A template with content for every channel and two placeholders, and a send by it (--template).
TEMPLATE = "bench"
TEMPLATE_CONTENT = {
    "sms": "Hi ((first name)), your order ((order ref)) has shipped.",
    "email": {"subject": "Order ((order ref)) has shipped", "body": "Dear ((first name)),\n\nyour order ((order ref)) is on its way."},
    "slack": "Order *((order ref))* for ((first name)) has shipped.",
}
TEMPLATE_BODY = json.dumps({"recipient": RECIPIENT, "template": TEMPLATE, "personalisation": {"first name": "Ada", "order ref": "A-1234"}})
TARGET_RATIO = 2.0


# ---------------------------------------------------------------- the stack


@dataclass
class Server(ProcessGauge):
    """A server under load: where the load generator sends, and its process's gauges."""

    port: int = 0
    path: str = ""
    body: str = BODY


@dataclass
class Stack:
    work_dir: Path
    certificates: Certificates
    database_url: str
    gateway_process: GatewayProcess
    gateway: Server
    gateway_template: Server  # the same gateway, sent TEMPLATE_BODY
    baseline: Server
    postgres: str
    emulator: str
    sns_endpoint: str

    def machine_line(self) -> str:
        return machine_line(postgres=self.postgres, aws=self.emulator)


@contextlib.contextmanager
def bench_stack(*, gateway_env: dict[str, str], sns: str = "sink", keep: bool = False) -> Iterator[Stack]:
    with work_directory("bench-gateway-", keep=keep) as (work_dir, cleanup):
        log_dir = work_dir / "logs"
        certificates = Certificates(work_dir / "certs")
        pki.init_pki(certificates.directory)
        server = cleanup.enter_context(postgres_server(work_dir))
        database_url = cleanup.enter_context(server.fresh_database())
        postgres = f"{server.description}, {server.version()}"

        # moto creates the topology either way; with the sink, the gateway publishes to the sink.
        moto = MotoServer(free_port(), log_path=log_dir / "moto.log").start()
        cleanup.callback(moto.stop)
        topology = asyncio.run(
            prepare_system(database_url=database_url, aws_endpoint_url=moto.endpoint_url, certs_dir=certificates.directory)
        )
        if sns == "sink":
            sink_port = free_port()
            sink = ManagedProcess(
                "sns-sink", [sys.executable, "-m", "bench.sns_sink", "--port", str(sink_port)], cwd=REPO_ROOT, log_path=log_dir / "sns-sink.log"
            ).start()
            cleanup.callback(sink.stop)
            wait_for_port(sink_port, timeout=30, process=sink)
            sns_endpoint, emulator = f"http://127.0.0.1:{sink_port}", "SNS: bench/sns_sink.py (takes every message at once)"
        else:
            sns_endpoint, emulator = moto.endpoint_url, f"SNS: moto {package_version('moto')} (server mode)"

        gateway = start_gateway(
            certificates=certificates,
            database_url=database_url,
            aws_endpoint_url=sns_endpoint,
            log_dir=log_dir,
            # The gateway's own defaults, not the tests' quicker settings: this measures production.
            settings={**PRODUCTION_GATEWAY_SETTINGS, "topic_arn": topology["topic_arn"]},
            extra_env=gateway_env,
        )
        cleanup.callback(gateway.stop)
        with gateway.client() as client:
            response = client.put(f"/recipients/{RECIPIENT}", json=CONTACTS)
            response.raise_for_status()
            client.put(f"/templates/{TEMPLATE}", json=TEMPLATE_CONTENT).raise_for_status()

        baseline_port = free_port()
        baseline = ManagedProcess(
            "baseline",
            [
                sys.executable, "-m", "bench.baseline_app", "--port", str(baseline_port),
                "--cert", str(certificates.server_cert), "--key", str(certificates.server_key), "--ca", str(certificates.ca),
            ],
            cwd=REPO_ROOT,
            log_path=log_dir / "baseline.log",
        ).start()
        cleanup.callback(baseline.stop)
        wait_for_port(baseline_port, timeout=30, process=baseline)

        yield Stack(
            work_dir=work_dir,
            certificates=certificates,
            database_url=database_url,
            gateway_process=gateway,
            gateway=Server("gateway POST /notifications", gateway.process.pid, gateway.port, "/notifications"),  # type: ignore[arg-type]
            gateway_template=Server(  # type: ignore[arg-type]
                "gateway, by template", gateway.process.pid, gateway.port, "/notifications", TEMPLATE_BODY  # type: ignore[arg-type]
            ),
            baseline=Server("baseline POST /echo", baseline.pid, baseline_port, "/echo"),  # type: ignore[arg-type]
            postgres=postgres,
            emulator=emulator,
            sns_endpoint=sns_endpoint,
        )


def outbox_backlog(stack: Stack) -> int:
    return int(fetch(stack.database_url, "SELECT count(*) AS n FROM outbox")[0]["n"])


def postgres_sessions(stack: Stack) -> int:
    """Sessions ever opened on the benchmark's database (this query's own included)."""
    return int(fetch(stack.database_url, "SELECT sessions FROM pg_stat_database WHERE datname = current_database()")[0]["sessions"])


def wait_for_outbox_to_drain(stack: Stack, timeout: float = 180.0) -> float | None:
    """Seconds until every accepted notification was published (None: not within ``timeout``)."""
    started = time.monotonic()
    while outbox_backlog(stack) > 0:
        if time.monotonic() - started > timeout:
            return None
        time.sleep(0.25)
    return time.monotonic() - started


def published_ids(stack: Stack) -> list[str] | None:
    """The notification ids the SNS sink received, repeats included (None behind moto)."""
    if "sns_sink" not in stack.emulator:
        return None
    return httpx.get(f"{stack.sns_endpoint}/ids", timeout=30).text.split()


def idle_cpu_per_second(server: Server, seconds: float = 3.0) -> float:
    """What the server burns doing nothing (the gateway's relay and CRL checks poll)."""
    before = server.cpu_seconds()
    time.sleep(seconds)
    return (server.cpu_seconds() - before) / seconds


# ---------------------------------------------------------------- one load run


@dataclass
class Run:
    server: str
    load: dict[str, Any]
    window_cpu: float  # CPU seconds of the server over the measured window
    # CPU seconds from the first request to the last answer; for the gateway until the last
    # notification was published, less what it would have burnt idle meanwhile.
    total_cpu: float
    rss_mb: float
    peak_rss_mb: float
    machine_busy_percent: float
    client_cpu_percent: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.load["window_seconds"]

    @property
    def ok(self) -> int:
        """2xx answers inside the window."""
        return _successes(self.load["statuses"])

    @property
    def ok_total(self) -> int:
        """2xx answers over the whole run, warm-up included."""
        return _successes(self.load["all_statuses"])

    @property
    def cpu_ms_per_ok(self) -> float:
        """The figure the ratio uses: all the CPU the run cost, over all it accepted."""
        return 1000 * self.total_cpu / self.ok_total if self.ok_total else float("inf")

    @property
    def window_cpu_ms_per_ok(self) -> float:
        return 1000 * self.window_cpu / self.ok if self.ok else float("inf")

    def latency(self, kind: str = "2xx") -> dict[str, float]:
        return self.load["latency_ms"].get(kind, {})


def _successes(statuses: dict[str, int]) -> int:
    return sum(count for status, count in statuses.items() if status.startswith("2"))


def drive(
    stack: Stack,
    server: Server,
    *,
    warmup: float,
    duration: float,
    connections: int,
    rate: float | None = None,
    max_connections: int = 512,
    collect_ids: bool = False,
    during_window: Callable[[float], None] | None = None,
    drain: bool = False,
    idle_cpu: float = 0.0,
) -> Run:
    """Run the load generator against one server and account the server's CPU.

    With ``drain`` (the gateway), the run ends when the outbox is empty: publishing lags
    accepting, and a notification's CPU includes its publishing.
    """
    out = stack.work_dir / f"load-{time.monotonic_ns()}.json"
    client = stack.certificates.client()
    argv = [
        sys.executable, "-m", "bench.load", "--port", str(server.port), "--path", server.path, "--body", server.body,
        "--ca", str(stack.certificates.ca), "--cert", str(client.cert), "--key", str(client.key),
        "--connections", str(connections), "--warmup", str(warmup), "--duration", str(duration), "--out", str(out),
        "--max-connections", str(max_connections),
    ]
    if rate:
        argv += ["--rate", f"{rate:.1f}"]
    if collect_ids:
        argv.append("--collect-ids")
    generator = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = generator.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("window "):
            raise RuntimeError(f"the load generator did not start (exit {generator.wait()})")
        cpu_start = server.cpu_seconds()
        window_from, window_until = (float(value) for value in line.split()[1:])
        _sleep_until(window_from)
        load = ProcessGauge("load generator", generator.pid)
        cpu_before, client_before = server.cpu_seconds(), load.cpu_seconds()
        psutil.cpu_percent()  # starts the machine-wide measurement
        if during_window is not None:
            during_window(window_until - time.monotonic())
        _sleep_until(window_until)
        cpu_after, client_after = server.cpu_seconds(), load.cpu_seconds()
        busy = psutil.cpu_percent()
        rss, peak = server.rss_mb(), server.peak_rss_mb()
        if generator.wait(timeout=60) != 0:
            raise RuntimeError(f"the load generator failed (exit {generator.returncode})")
    finally:
        if generator.poll() is None:
            generator.kill()
    drain_seconds = wait_for_outbox_to_drain(stack) if drain else 0.0
    cpu_end = server.cpu_seconds()
    load = json.loads(out.read_text())
    out.unlink()
    return Run(
        server=server.name,
        load=load,
        window_cpu=cpu_after - cpu_before,
        total_cpu=cpu_end - cpu_start - idle_cpu * (drain_seconds or 0.0),
        rss_mb=rss,
        peak_rss_mb=peak,
        machine_busy_percent=busy,
        client_cpu_percent=100 * (client_after - client_before) / (window_until - window_from),
        extra={"drain_seconds": drain_seconds} if drain else {},
    )


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


# ---------------------------------------------------------------- mode: the ratio


def measure_ratio(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    servers = [("baseline", stack.baseline), ("gateway", stack.gateway)]
    if args.template:
        servers.append(("gateway_template", stack.gateway_template))
    idle = {"baseline": idle_cpu_per_second(stack.baseline), "gateway": idle_cpu_per_second(stack.gateway)}
    idle["gateway_template"] = idle["gateway"]
    runs: dict[str, list[Run]] = {name: [] for name, _ in servers}
    for round_number in range(1, args.rounds + 1):
        for name, server in servers:
            sessions_before = postgres_sessions(stack)
            run = drive(
                stack, server, warmup=args.warmup, duration=args.duration, connections=args.connections,
                drain=name != "baseline", idle_cpu=idle[name],
            )
            if name != "baseline":
                # Less one: the query that counts is a session too.
                run.extra["postgres_sessions_opened"] = postgres_sessions(stack) - sessions_before - 1
            runs[name].append(run)
            print(
                f"  round {round_number}: {server.name}: {run.ok / run.seconds:.0f} ok/s, "
                f"{run.cpu_ms_per_ok:.3f} CPU ms per ok ({run.window_cpu_ms_per_ok:.3f} in the window)",
                file=sys.stderr,
            )

    def totals(name: str) -> dict[str, Any]:
        group = runs[name]
        ok, seconds = sum(r.ok for r in group), sum(r.seconds for r in group)
        ok_total, total_cpu = sum(r.ok_total for r in group), sum(r.total_cpu for r in group)
        latencies = [r.latency() for r in group]
        return {
            "ok_per_second": ok / seconds,
            "answered_per_second": sum(sum(c for s, c in r.load["statuses"].items() if s.isdigit()) for r in group) / seconds,
            "statuses": dict(sum((Counter(r.load["all_statuses"]) for r in group), Counter())),
            "ok_total": ok_total,
            "cpu_ms_per_ok": 1000 * total_cpu / ok_total,
            "window_cpu_ms_per_ok": 1000 * sum(r.window_cpu for r in group) / ok,
            "server_cpu_percent": 100 * sum(r.window_cpu for r in group) / seconds,
            # Percentiles per round, then the median across rounds (rounds are not pooled).
            "p50_ms": _median([lat["p50"] for lat in latencies if lat]),
            "p99_ms": _median([lat["p99"] for lat in latencies if lat]),
            "rss_mb": max(r.rss_mb for r in group),
            "peak_rss_mb": max(r.peak_rss_mb for r in group),
            "idle_cpu_percent": 100 * idle[name],
            "machine_busy_percent": _median([r.machine_busy_percent for r in group]),
            "client_cpu_percent": _median([r.client_cpu_percent for r in group]),
            "rounds_cpu_ms_per_ok": [round(r.cpu_ms_per_ok, 4) for r in group],
            "rounds": [r.extra for r in group],
        }

    baseline, gateway = totals("baseline"), totals("gateway")
    published = published_ids(stack)
    template = totals("gateway_template") if args.template else None
    if published is not None:
        accepted = gateway["ok_total"] + (template["ok_total"] if template else 0)
        gateway["published_copies_per_accepted"] = len(published) / (accepted + 1)  # +1: the set-up POST
    result: dict[str, Any] = {
        "baseline": baseline,
        "gateway": gateway,
        "ratio": gateway["cpu_ms_per_ok"] / baseline["cpu_ms_per_ok"],
        "window_ratio": gateway["window_cpu_ms_per_ok"] / baseline["window_cpu_ms_per_ok"],
        "rounds_ratio": [g.cpu_ms_per_ok / b.cpu_ms_per_ok for b, g in zip(runs["baseline"], runs["gateway"], strict=True)],
    }
    if template is not None:
        result["gateway_template"] = template
        result["template_ratio"] = template["cpu_ms_per_ok"] / baseline["cpu_ms_per_ok"]
        result["template_rounds_ratio"] = [
            g.cpu_ms_per_ok / b.cpu_ms_per_ok for b, g in zip(runs["baseline"], runs["gateway_template"], strict=True)
        ]
    return result


def print_ratio(result: dict[str, Any], stack: Stack, args: argparse.Namespace) -> None:
    print()
    print(
        f"Gateway benchmark: {args.rounds} rounds x {args.duration:g} s per server (after {args.warmup:g} s warm-up), "
        f"{args.connections} keep-alive mTLS connections, one load-generator process"
    )
    print(stack.machine_line())
    print()
    header = (
        f"{'server':<29}{'ok/s':>7}{'p50 ms':>8}{'p99 ms':>8}{'CPU ms/ok':>11}{'(window)':>10}"
        f"{'CPU':>6}{'RSS MB':>8}{'peak':>6}"
    )
    print(header)
    print("-" * len(header))
    rows = [("baseline", stack.baseline.name), ("gateway", stack.gateway.name)]
    if "gateway_template" in result:
        rows.append(("gateway_template", stack.gateway_template.name))
    for name, label in rows:
        row = result[name]
        print(
            f"{label:<29}{row['ok_per_second']:>7.0f}{row['p50_ms']:>8.1f}{row['p99_ms']:>8.1f}{row['cpu_ms_per_ok']:>11.3f}"
            f"{row['window_cpu_ms_per_ok']:>10.3f}{row['server_cpu_percent']:>5.0f}%{row['rss_mb']:>8.0f}{row['peak_rss_mb']:>6.0f}"
        )
    verdict = "meets" if result["ratio"] <= TARGET_RATIO else "MISSES"
    rounds = ", ".join(f"{ratio:.2f}" for ratio in result["rounds_ratio"])
    print()
    print(
        f"ratio, gateway CPU per accepted notification (publishing included) / baseline CPU per request: "
        f"{result['ratio']:.2f} ({verdict} the target <= {TARGET_RATIO:g}; rounds: {rounds}; "
        f"window CPU only: {result['window_ratio']:.2f})"
    )
    if "template_ratio" in result:
        rounds = ", ".join(f"{ratio:.2f}" for ratio in result["template_rounds_ratio"])
        print(f"ratio by template ({TEMPLATE_BODY}): {result['template_ratio']:.2f} (rounds: {rounds})")
    print(
        f"CPU ms/ok: all CPU from the first request to the last answer (gateway: to the last SNS publish, "
        f"less idle CPU of {result['gateway']['idle_cpu_percent']:.1f}%) over all 2xx; (window): the measured window only"
    )
    print(
        f"load generator CPU: {result['gateway']['client_cpu_percent']:.0f}% (gateway runs), "
        f"{result['baseline']['client_cpu_percent']:.0f}% (baseline runs); machine busy: "
        f"{result['gateway']['machine_busy_percent']:.0f}% / {result['baseline']['machine_busy_percent']:.0f}% of {os.cpu_count()} cores"
    )
    for number, extra in enumerate(result["gateway"]["rounds"], start=1):
        drained = f"{extra['drain_seconds']:.1f} s" if extra["drain_seconds"] is not None else "NOT within 180 s"
        print(
            f"gateway round {number}: all published {drained} after the load; "
            f"{extra['postgres_sessions_opened']} Postgres sessions opened"
        )
    if "published_copies_per_accepted" in result["gateway"]:
        print(f"SNS messages per accepted notification: {result['gateway']['published_copies_per_accepted']:.3f}")
    statuses = result["gateway"]["statuses"]
    if set(statuses) - {"201"}:
        print(f"gateway answers other than 201: { {s: n for s, n in statuses.items() if s != '201'} }")


# ---------------------------------------------------------------- mode: overload


def overload(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    print(f"  measuring capacity: {args.duration:g} s closed loop, {args.connections} connections", file=sys.stderr)
    capacity_run = drive(stack, stack.gateway, warmup=args.warmup, duration=args.duration, connections=args.connections)
    capacity = capacity_run.ok / capacity_run.seconds
    wait_for_outbox_to_drain(stack)
    # A fixed offered rate (--offered) compares two gateways at the same load: the capacity a
    # closed loop measures on a shared machine moves with the neighbours.
    rate = args.offered or args.factor * capacity
    print(f"  capacity {capacity:.0f}/s; driving {rate:.0f}/s open loop for {args.duration:g} s", file=sys.stderr)
    alive_samples: list[bool] = []

    def watch(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            alive_samples.append(stack.gateway_process.process.running)
            time.sleep(0.5)

    # Warm-up 0 by default: the first requests meet a gateway at rest, which is part of what
    # overload looks like; --open-warmup leaves out the onset (connections opening) to see the steady state.
    run = drive(
        stack, stack.gateway, warmup=args.open_warmup, duration=args.duration, connections=args.connections,
        rate=rate, max_connections=args.max_connections, collect_ids=True, during_window=watch,
    )
    stayed_up = all(alive_samples) and stack.gateway_process.process.running
    healthz = _status(f"{stack.gateway_process.ops_url}/healthz")
    with stack.gateway_process.client() as client:
        after = client.post("/notifications", content=BODY, headers={"Content-Type": "application/json"}).status_code
    drain_seconds = wait_for_outbox_to_drain(stack)
    ids = run.load["accepted_ids"]
    published = published_ids(stack)
    published_set = set(published) if published is not None else None
    # Every request the load generator saw a 201 for, in Postgres with its deliveries, and published.
    stored = fetch(
        stack.database_url,
        """
        SELECT count(*) AS notifications,
               (SELECT count(*) FROM deliveries WHERE notification_id = ANY($1::uuid[])) AS deliveries,
               (SELECT count(*) FROM outbox WHERE notification_id = ANY($1::uuid[])) AS unpublished
        FROM notifications WHERE id = ANY($1::uuid[])
        """,
        ids,
    )[0]
    return {
        "capacity_per_second": capacity,
        "offered_per_second": rate,
        "offered": round(rate * args.duration),
        "statuses": run.load["statuses"],
        "answered_over_seconds": run.load["span_seconds"],
        "per_second": {status: count / run.load["span_seconds"] for status, count in run.load["statuses"].items()},
        "latency_ms": run.load["latency_ms"],
        "connections_opened": run.load["connections_opened"],
        "waited_for_connection": run.load["waited_for_connection"],
        "ended_after_window": run.load["ended_after_window"],
        "stayed_up": stayed_up,
        "healthz_after": healthz,
        "post_after": after,
        "peak_rss_mb": run.peak_rss_mb,
        "accepted": len(ids),
        "accepted_distinct": len(set(ids)),
        "stored": stored["notifications"],
        "deliveries": stored["deliveries"],
        "deliveries_expected": len(ids) * len(CONTACTS),
        "unpublished_after_drain": stored["unpublished"],
        "published_of_accepted": len(published_set & set(ids)) if published_set is not None else None,
        "sns_messages": len(published) if published is not None else None,
        "drain_seconds": drain_seconds,
        "server_cpu_percent": 100 * run.window_cpu / run.seconds,
        "client_cpu_percent": run.client_cpu_percent,
        "machine_busy_percent": run.machine_busy_percent,
    }


def print_overload(result: dict[str, Any], stack: Stack, args: argparse.Namespace) -> None:
    print()
    print(
        f"Gateway overload: capacity {result['capacity_per_second']:.0f} accepted/s (closed loop, {args.connections} connections); "
        f"then {result['offered_per_second']:.0f}/s offered ({result['offered_per_second'] / result['capacity_per_second']:.1f}x) for {args.duration:g} s, open loop, "
        f"up to {args.max_connections} connections"
    )
    print(stack.machine_line())
    print()
    print(f"answers came over {result['answered_over_seconds']:.1f} s (the offered load lasted {args.duration:g} s)")
    header = f"{'answer':<18}{'count':>8}{'per s':>8}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}"
    print(header)
    print("-" * len(header))
    for status, count in sorted(result["statuses"].items()):
        kind = f"{status[0]}xx" if status.isdigit() else status
        latency = result["latency_ms"].get(kind, {})
        print(
            f"{status:<18}{count:>8}{result['per_second'][status]:>8.0f}"
            f"{latency.get('p50', float('nan')):>10.0f}{latency.get('p99', float('nan')):>10.0f}{latency.get('max', float('nan')):>10.0f}"
        )
    print()
    print(f"answered after the {args.duration:g} s of offered load: {result['ended_after_window']}; "
          f"that had to wait for a free connection: {result['waited_for_connection']}; connections opened: {result['connections_opened']}")
    print(f"stayed up: {result['stayed_up']}; /healthz after: {result['healthz_after']}; a POST right after: {result['post_after']}; "
          f"peak RSS {result['peak_rss_mb']:.0f} MB; gateway CPU {result['server_cpu_percent']:.0f}%, "
          f"load generator CPU {result['client_cpu_percent']:.0f}%, machine busy {result['machine_busy_percent']:.0f}% of {os.cpu_count()} cores")
    lost = result["accepted"] - result["stored"]
    drained = f"drained in {result['drain_seconds']:.1f} s" if result["drain_seconds"] is not None else "outbox NOT drained in 180 s"
    print(
        f"201s: {result['accepted']} ({result['accepted_distinct']} distinct ids); in Postgres: {result['stored']} "
        f"({'none lost' if lost == 0 else f'{lost} LOST'}); deliveries {result['deliveries']} of {result['deliveries_expected']}; "
        f"unpublished after the drain: {result['unpublished_after_drain']} ({drained})"
    )
    if result["published_of_accepted"] is not None:
        print(f"SNS got {result['published_of_accepted']} of the {result['accepted']} accepted, in {result['sns_messages']} messages (all runs)")


def _status(url: str) -> int | str:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError as exc:
        return type(exc).__name__


# ---------------------------------------------------------------- mode: profile


def profile(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    py_spy = Path(sys.executable).with_name("py-spy")
    raw = stack.work_dir / "profile.txt"
    keep = Path(args.profile_out).resolve() if args.profile_out else None
    recorder: subprocess.Popen[bytes] | None = None

    def record(seconds: float) -> None:
        nonlocal recorder
        # --gil: only the thread running Python code counts, so threads blocked in C (pycares'
        # shutdown thread waits on a queue) do not show up as busy; --nonblocking: the gateway is
        # not paused for each sample, so it runs at its usual speed.
        argv = [str(py_spy), "record", "--pid", str(stack.gateway.pid), "--duration", str(int(seconds)), "--rate", "100",
                "--format", "raw", "--output", str(raw), "--gil", "--nonblocking"]
        if args.native:
            argv.append("--native")
        recorder = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    run = drive(stack, stack.gateway, warmup=args.warmup, duration=args.duration, connections=args.connections, during_window=record)
    assert recorder is not None
    _, errors = recorder.communicate(timeout=60)
    if recorder.returncode != 0 or not raw.exists():
        raise RuntimeError(f"py-spy failed: {errors.decode()[-2000:]}")
    if keep is not None:
        shutil.copyfile(raw, keep)
    stacks = [(line.rsplit(" ", 1)[0].split(";"), int(line.rsplit(" ", 1)[1])) for line in raw.read_text().splitlines() if line.strip()]
    total = sum(count for _, count in stacks)
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    by_stage: Counter[str] = Counter()
    for frames, count in stacks:
        frames = [_function(frame) for frame in frames[1:]] or ["(thread)"]  # frames[0] is the thread
        by_stage[_stage(frames)] += count
        own[frames[-1]] += count
        by_package[_package(frames[-1])] += count
        for function in set(frames):
            inclusive[function] += count
    return {
        "samples": total,
        "ok_per_second_while_profiled": run.ok / run.seconds,
        "by_stage": [(name, count / total) for name, count in by_stage.most_common()],
        "by_package": [(name, count / total) for name, count in by_package.most_common(args.top)],
        "own": [(name, count / total) for name, count in own.most_common(args.top)],
        "inclusive": [(name, count / total) for name, count in inclusive.most_common(args.top * 2)],
        "raw": str(keep) if keep else None,
    }


# Where a sample's time goes, by the first of these its stack matches (markers are substrings of
# the stack's frames, all of which must be present).
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("logging (structlog)", ("structlog",)),
    ("publisher: outbox DELETE after publishing", ("OutboxPublisher._work", "delete_published")),
    ("publisher: SNS PublishBatch (botocore, aiohttp)", ("OutboxPublisher._work",)),
    ("outbox relay", ("OutboxRelay",)),
    ("DB connection: opening asyncpg connections", ("Checkout.", "connect_utils")),
    ("DB connection: asyncpg pool checkout and return", ("Checkout.",)),
    ("accept statement: asyncpg (bind, protocol, decode)", ("NotificationRepository.accept", "asyncpg/")),
    ("accept statement: the repository call itself", ("NotificationRepository.accept",)),
    ("refusals: idempotency-key lookups", ("by_idempotency_keys",)),
    ("service: uuid7, rows to models, submit to publisher", ("NotificationService.",)),
    ("grouping concurrent accepts into statements", ("StatementBatcher",)),
    ("FastAPI: body validation", ("solve_dependencies", "pydantic")),
    ("FastAPI: dependencies (identity, role, header, connection)", ("solve_dependencies",)),
    ("metrics (prometheus_client)", ("prometheus_client",)),
    ("response: sending through the middlewares", ("run_asgi", "send")),
    ("accept endpoint: body, validation, identity, 201", ("AcceptNotification",)),
    ("ASGI: Starlette/FastAPI routing and middlewares", ("run_asgi",)),
)


def _stage(frames: list[str]) -> str:
    joined = ";".join(frames)
    for label, markers in STAGES:
        if all(marker in joined for marker in markers):
            return label
    return "event loop, TLS, HTTP parsing (uvloop, uvicorn) and the rest"


def _function(frame: str) -> str:
    """``func (path/to/file.py:123)`` without the line number, the path cut to the package."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3.11/", str(REPO_ROOT) + "/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where})" if where else name


def _package(function: str) -> str:
    where = function.partition(" (")[2].rstrip(")")
    if not where:
        return "native / event loop (no Python frame)"
    top = where.split("/", 1)[0]
    return top.removesuffix(".py")


def print_profile(result: dict[str, Any], stack: Stack, args: argparse.Namespace) -> None:
    print()
    print(
        f"Gateway profile: py-spy (--gil --nonblocking), 100 Hz, {args.duration:g} s under {args.connections} connections "
        f"({result['ok_per_second_while_profiled']:.0f} accepted/s while sampled), {result['samples']} samples"
    )
    print(stack.machine_line())
    for title, rows in (("CPU by stage (the first matching stage in bench/gateway.py's STAGES)", result["by_stage"]),
                        ("CPU by package (where the sampled frame's code lives)", result["by_package"]),
                        ("Own time (the function on top of the stack)", result["own"]),
                        ("Inclusive time (the function anywhere on the stack)", result["inclusive"])):
        print()
        print(title)
        for name, share in rows:
            print(f"  {100 * share:5.1f}%  {name}")
    if result["raw"]:
        print(f"\nraw stacks (py-spy collapsed format): {result['raw']}")


# ---------------------------------------------------------------- scale-out (bench/scale_out.py --gateway)


@dataclass
class ReplicatedServer(Server):
    """Gateway processes sharing one port: their CPU together, the largest one's memory."""

    other_pids: tuple[int, ...] = ()

    def cpu_seconds(self) -> float:
        return super().cpu_seconds() + sum(ProcessGauge(self.name, pid).cpu_seconds() for pid in self.other_pids)


def gateways_scale_out(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """Closed-loop capacity of one gateway process, then of two on the same port (SO_REUSEPORT),
    rounds alternating (one, two, one, two) so that a neighbour's burst hits both."""
    reuse = {"GATEWAY_REUSE_PORT": "true"}
    with bench_stack(gateway_env=reuse, keep=args.keep) as stack:
        runs: dict[int, list[Run]] = {1: [], 2: []}
        for round_number in range(1, args.rounds + 1):
            for processes in (1, 2):
                # The second process runs only in its phase: a listener that is there but not
                # serving would still be handed connections by the kernel.
                second = None
                if processes == 2:
                    second = start_gateway(
                        certificates=stack.certificates, database_url=stack.database_url, aws_endpoint_url=stack.sns_endpoint,
                        log_dir=stack.work_dir / "logs", name=f"gateway-2-{round_number}",
                        settings={**PRODUCTION_GATEWAY_SETTINGS, "topic_arn": stack.gateway_process.env["GATEWAY_TOPIC_ARN"]},
                        extra_env=reuse, port=stack.gateway.port,
                    )
                try:
                    server = ReplicatedServer(
                        f"{processes} gateway(s)", stack.gateway.pid, stack.gateway.port, "/notifications",
                        other_pids=(second.process.pid,) if second is not None else (),  # type: ignore[arg-type]
                    )
                    run = drive(stack, server, warmup=args.warmup, duration=args.duration, connections=64, drain=True)
                finally:
                    if second is not None:
                        second.stop()
                runs[processes].append(run)
                print(f"  round {round_number}, {processes} process(es): {run.ok / run.seconds:.0f} accepted/s", file=sys.stderr)
        machine = stack.machine_line()

    def phase(processes: int) -> dict[str, Any]:
        group = runs[processes]
        ok, seconds = sum(r.ok for r in group), sum(r.seconds for r in group)
        return {
            "processes": processes,
            "accepted_per_second": ok / seconds,
            "rounds_accepted_per_second": [round(r.ok / r.seconds, 1) for r in group],
            "cpu_ms_per_accepted": 1000 * sum(r.total_cpu for r in group) / sum(r.ok_total for r in group),
            "gateway_cpu_percent": 100 * sum(r.window_cpu for r in group) / seconds,
            "machine_busy_percent": _median([r.machine_busy_percent for r in group]),
            "p99_ms": _median([r.latency()["p99"] for r in group if r.latency()]),
        }

    one, two = phase(1), phase(2)
    return {"phases": [one, two], "ratio": two["accepted_per_second"] / one["accepted_per_second"]}, machine


def print_gateways_scale_out(result: dict[str, Any], args: argparse.Namespace, machine: str) -> None:
    print()
    print(
        f"Scale-out: python -m gateway, one process, then two on one port (GATEWAY_REUSE_PORT, SO_REUSEPORT); rounds alternate; "
        f"{args.duration:g} s per round after {args.warmup:g} s, 64 keep-alive mTLS connections, closed loop"
    )
    print(machine)
    print()
    header = f"{'processes':<11}{'accepted/s':>11}{'rounds':>16}{'CPU ms/ok':>11}{'gateway CPU':>13}{'machine busy':>14}{'p99 ms':>8}"
    print(header)
    print("-" * len(header))
    for row in result["phases"]:
        rounds = ", ".join(f"{value:.0f}" for value in row["rounds_accepted_per_second"])
        print(
            f"{row['processes']:<11}{row['accepted_per_second']:>11.0f}{rounds:>16}{row['cpu_ms_per_accepted']:>11.3f}"
            f"{row['gateway_cpu_percent']:>12.0f}%{row['machine_busy_percent']:>13.0f}%{row['p99_ms']:>8.0f}"
        )
    print()
    print(
        f"two processes / one: {result['ratio']:.2f}x accepted/s, on {os.cpu_count()} cores shared with Postgres, the SNS sink and "
        f"the load generator (machine busy is of all cores)"
    )


# ---------------------------------------------------------------- main


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--overload", action="store_true", help="measure capacity, then drive --factor times that")
    mode.add_argument("--profile", action="store_true", help="sample the gateway with py-spy under load")
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per run (default 15)")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each run (default 3)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per server, interleaved (default 2)")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections (default 64)")
    parser.add_argument("--factor", type=float, default=2.0, help="--overload: offered load over capacity (default 2)")
    parser.add_argument("--offered", type=float, help="--overload: offer this many requests a second instead of --factor x capacity")
    parser.add_argument("--open-warmup", type=float, default=0.0, help="--overload: unmeasured seconds of the open loop (default 0)")
    parser.add_argument("--max-connections", type=int, default=512, help="--overload: connection cap of the open loop (default 512)")
    parser.add_argument("--native", action="store_true", help="--profile: include native frames (C extensions, OpenSSL)")
    parser.add_argument("--top", type=int, default=15, help="--profile: rows per table (default 15)")
    parser.add_argument("--profile-out", help="--profile: keep the raw py-spy stacks in this file")
    parser.add_argument("--template", action="store_true", help="the ratio: also a send by template, in the same rounds")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (certificates, service logs)")
    parser.add_argument(
        "--sns", choices=("sink", "moto"), default="sink", help="where the gateway publishes: bench/sns_sink.py (default) or moto"
    )
    parser.add_argument(
        "--gateway-env", action="append", default=[], metavar="NAME=VALUE", help="extra gateway setting, e.g. GATEWAY_RATE_LIMIT_ENABLED=true"
    )
    args = parser.parse_args()
    gateway_env = dict(item.split("=", 1) for item in args.gateway_env)

    with bench_stack(gateway_env=gateway_env, sns=args.sns, keep=args.keep) as stack:
        if args.overload:
            result = overload(stack, args)
            print_overload(result, stack, args)
            name = "gateway_overload"
        elif args.profile:
            result = profile(stack, args)
            print_profile(result, stack, args)
            name = "gateway_profile"
        else:
            result = measure_ratio(stack, args)
            print_ratio(result, stack, args)
            name = "gateway"
        summary = {"benchmark": name, "machine": stack.machine_line(), "settings": vars(args), **result}
        summary.pop("accepted_ids", None)
        print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
