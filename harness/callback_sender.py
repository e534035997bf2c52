"""The callback sender as a real process (``python -m callback_sender``), for tests and benchmarks."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callback_sender.settings import CallbackSenderSettings
from harness.metrics import Samples, scrape
from shared.settings import environment_for
from stack.network import free_port, wait_for_http
from stack.processes import REPO_ROOT, ManagedProcess

# Quicker than production where the tests wait on them: polls, retries, a dead sender's leases.
TEST_CALLBACK_SETTINGS: dict[str, Any] = {
    "poll_interval_seconds": 0.2,
    "backoff_base_seconds": 0.5,
    "backoff_max_seconds": 2.0,
    "lease_seconds": 12.0,
    "shutdown_grace_seconds": 5.0,
}


@dataclass
class CallbackSenderProcess:
    process: ManagedProcess
    ops_port: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def ops_url(self) -> str:
        return f"http://127.0.0.1:{self.ops_port}"

    def metrics(self) -> Samples:
        return scrape(self.ops_url, timeout=5)

    def start(self) -> CallbackSenderProcess:
        self.process.start()
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        try:
            wait_for_http(f"{self.ops_url}/readyz", timeout=30, process=self.process)
        except Exception:
            self.process.stop()
            raise RuntimeError(f"the callback sender did not become ready:\n{self.process.log_tail()}") from None

    def stop(self) -> None:
        self.process.stop()


def callback_sender(*, database_url: str, log_dir: Path, name: str = "callback_sender", **settings: Any) -> CallbackSenderProcess:
    """A callback sender on a free ops port (not started); ``settings`` by field name go on top of
    the tests' quicker timings."""
    ops_port = free_port()
    env = environment_for(
        CallbackSenderSettings,
        database_url=database_url,
        ops_port=ops_port,
        log_format="json",
        **{**TEST_CALLBACK_SETTINGS, **settings},
    )
    process = ManagedProcess(name, [sys.executable, "-m", "callback_sender"], env=env, cwd=REPO_ROOT, log_path=log_dir / f"{name}.log")
    return CallbackSenderProcess(process, ops_port, env)
