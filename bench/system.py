"""What the benchmarks share: a work directory, the system started with production settings, gauges.

Each benchmark runs in a temporary directory of its own (certificates, logs; ``--keep`` keeps it):
a fresh database on DATABASE_URL's server (an embedded Postgres when unset), moto or LocalStack,
WireMock standing in for Slack, and the services as real processes (:mod:`harness`) with their
production runtime settings (not the integration tests' quicker ones).
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import psutil

from harness.gateway import Certificates
from harness.postgres import postgres_server
from harness.senders import PRODUCTION_SENDER_SETTINGS
from harness.system import System, started_system
from mtls import pki
from stack.localstack_install import LOCALSTACK_VERSION

# What --emulator takes in the benchmarks that run the senders (harness.aws.EMULATORS).
EMULATOR_NAMES = ("moto", "moto-patched", "localstack")
EMULATOR_LABELS = {
    "moto": f"moto {package_version('moto')} (server mode)",
    "moto-patched": f"moto {package_version('moto')} (server mode, stack/patched_moto.py)",
    "localstack": f"LocalStack {LOCALSTACK_VERSION} (host mode)",
}
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


@dataclass
class BenchSystem:
    system: System
    postgres_label: str
    emulator_label: str
    postgres_pid: int | None  # the embedded server's postmaster; None on DATABASE_URL's server

    def machine_line(self) -> str:
        return machine_line(postgres=self.postgres_label, aws=f"AWS emulator: {self.emulator_label}")


def bench_system(work_dir: Path, cleanup: contextlib.ExitStack, *, emulator: str, wiremock_journal: bool = True) -> BenchSystem:
    """The system without the services (a benchmark starts those with its own settings), on
    production sender defaults; WireMock with threads to spare, and optionally without a journal
    (which costs WireMock CPU and memory per request)."""
    server = cleanup.enter_context(postgres_server(work_dir))
    certificates = Certificates(work_dir / "certs")
    pki.init_pki(certificates.directory)
    system = cleanup.enter_context(
        started_system(
            postgres=server,
            certificates=certificates,
            log_dir=work_dir / "logs",
            emulator=emulator,
            wiremock_options={
                "container_threads": WIREMOCK_CONTAINER_THREADS,
                "max_journal_entries": 100_000 if wiremock_journal else None,
            },
            gateway=False,
            sender_defaults=PRODUCTION_SENDER_SETTINGS,
        )
    )
    pid = None
    if server.embedded is not None:
        pid = int((server.embedded.data_dir / "postmaster.pid").read_text().splitlines()[0])
    return BenchSystem(system, f"{server.description}, {server.version()}", EMULATOR_LABELS[emulator], pid)


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


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy since boot (all processes, ours or not)."""
    times = psutil.cpu_times()
    # Not steal: that is the hypervisor giving the core to another machine.
    return times.user + times.nice + times.system + getattr(times, "irq", 0.0) + getattr(times, "softirq", 0.0)


def percentiles(values: list[float]) -> dict[str, Any]:
    """count, p50, p90, p99, max (same picks as bench/load.py), in the values' unit."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0}

    def pick(quantile: float) -> float:
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]

    return {"count": len(ordered), "p50": pick(0.50), "p90": pick(0.90), "p99": pick(0.99), "max": ordered[-1]}


def machine_line(*, postgres: str, aws: str) -> str:
    """The machine, its load, Python, and what Postgres and AWS were (``aws``: "AWS emulator: ..." or "SNS: ...")."""
    cpu = platform.processor() or next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "?"
    )
    return (
        f"machine: {cpu}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; load average {load_average()}; "
        f"Python {platform.python_version()}; Postgres: {postgres}; {aws}"
    )


def load_average() -> str:
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())
