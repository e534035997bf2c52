"""The senders as real processes (``python -m sender_slack`` ...), started and stopped by tests and benchmarks.

Tests run them with :data:`TEST_RUNTIME_SETTINGS` (short timings, so that retries and the road to
the DLQ take seconds); benchmarks with :data:`PRODUCTION_SENDER_SETTINGS`, the senders' own defaults.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.metrics import Samples, scrape
from shared.sender_settings import SenderSettings
from shared.settings import environment_for
from shared.channels import Channel
from stack.emulator import EMULATOR_CREDENTIALS
from stack.network import free_port, wait_for_http
from stack.processes import REPO_ROOT, ManagedProcess
from stack.services import SENDER_BY_CHANNEL

# Short enough that retries and the road to the DLQ take seconds, long enough that a busy test
# machine does not see messages reappear while they are being worked on.
TEST_RUNTIME_SETTINGS = {
    "VISIBILITY_TIMEOUT_SECONDS": "8",
    "HEARTBEAT_SECONDS": "2",
    "BACKOFF_BASE_SECONDS": "1",
    "BACKOFF_MAX_SECONDS": "2",
    "SEND_TIMEOUT_SECONDS": "5",
    "SHUTDOWN_GRACE_SECONDS": "15",
    "DELETE_FLUSH_SECONDS": "0.1",
    "RECEIVE_WAIT_SECONDS": "2",
}
# The receipt readers' timings in tests, per channel (settings only that sender has): an unknown
# message id is tried for 20 s, not five minutes, and the SMS delivery logs are read twice a second.
TEST_RECEIPT_SETTINGS: dict[Channel, dict[str, str]] = {
    Channel.SMS: {"DELIVERY_LOGS_POLL_SECONDS": "0.5", "DELIVERY_LOGS_OVERLAP_SECONDS": "30", "RECEIPTS_UNKNOWN_RETRY_SECONDS": "20"},
    Channel.EMAIL: {"RECEIPTS_UNKNOWN_RETRY_SECONDS": "20"},
}
# The senders' own defaults for every setting the tests shorten: what production runs.
PRODUCTION_SENDER_SETTINGS = {name: str(SenderSettings.model_fields[name.lower()].default) for name in TEST_RUNTIME_SETTINGS}
# Each sender's runtime settings prefix: SMS_SENDER_ ...
ENV_PREFIX = {channel: service.settings_cls.model_config["env_prefix"] for channel, service in SENDER_BY_CHANNEL.items()}


def sender_environment(
    channel: Channel,
    *,
    database_url: str,
    aws_endpoint_url: str,
    slack_api_url: str,
    runtime: dict[str, str],
) -> dict[str, str]:
    """The environment of a sender for ``channel``: where its dependencies are, and ``runtime``
    settings by their names without the prefix (``CONCURRENCY``, ``OPS_PORT``...)."""
    settings_cls = SENDER_BY_CHANNEL[channel].settings_cls
    values: dict[str, Any] = {
        "database_url": database_url,
        "aws_endpoint_url": aws_endpoint_url,
        "aws_region": "us-east-1",
        **EMULATOR_CREDENTIALS,
        "log_format": "json",
        "log_level": "INFO",
        **{name.lower(): value for name, value in runtime.items()},
    }
    if "slack_api_url" in settings_cls.model_fields:
        values["slack_api_url"] = slack_api_url
    return environment_for(settings_cls, **values)


@dataclass
class SenderProcess:
    channel: Channel
    process: ManagedProcess
    ops_port: int
    env: dict[str, str] = field(default_factory=dict)
    # Started with non-default settings: not reused by Senders.ensure, stopped after its test.
    custom: bool = False

    @property
    def ops_url(self) -> str:
        return f"http://127.0.0.1:{self.ops_port}"

    def metrics(self) -> Samples:
        return scrape(self.ops_url, timeout=5)

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.process.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    pass
        return lines


def sender_process(channel: Channel, name: str, env: dict[str, str], *, ops_port: int, log_dir: Path, custom: bool) -> SenderProcess:
    """A sender process (not started) with this environment."""
    process = ManagedProcess(
        name, [sys.executable, "-m", SENDER_BY_CHANNEL[channel].module], env=env, cwd=REPO_ROOT, log_path=log_dir / f"{name}.log"
    )
    return SenderProcess(channel=channel, process=process, ops_port=ops_port, env=env, custom=custom)


class Senders:
    """Starts sender processes on one stack; stops whatever it started.

    ``defaults`` are the runtime settings every sender gets (the tests' short timings unless
    given), the overrides of :meth:`start` go on top.
    """

    def __init__(
        self,
        *,
        database_url: str,
        aws_endpoint_url: str,
        slack_api_url: str,
        log_dir: Path,
        defaults: dict[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.aws_endpoint_url = aws_endpoint_url
        self.slack_api_url = slack_api_url
        self.log_dir = log_dir
        self.defaults = TEST_RUNTIME_SETTINGS if defaults is None else defaults
        self.running: list[SenderProcess] = []
        self._count = 0

    def start(self, channel: Channel, **overrides: str) -> SenderProcess:
        """A sender for ``channel``, ready; ``overrides`` are runtime settings without the prefix."""
        sender = self.launch(channel, **overrides)
        self.wait_ready(sender)
        return sender

    def start_many(self, count: int, channel: Channel, **overrides: str) -> list[SenderProcess]:
        """``count`` replicas, started together."""
        senders = [self.launch(channel, **overrides) for _ in range(count)]
        for sender in senders:
            self.wait_ready(sender)
        return senders

    def wait_ready(self, sender: SenderProcess) -> None:
        try:
            wait_for_http(f"{sender.ops_url}/readyz", timeout=30, process=sender.process)
        except BaseException:
            self.stop(sender)
            raise

    def launch(self, channel: Channel, **overrides: str) -> SenderProcess:
        """A sender for ``channel``, started and not yet ready."""
        self._count += 1
        ops_port = free_port()
        env = sender_environment(
            channel,
            database_url=self.database_url,
            aws_endpoint_url=self.aws_endpoint_url,
            slack_api_url=self.slack_api_url,
            runtime={
                **self.defaults,
                **(TEST_RECEIPT_SETTINGS.get(channel, {}) if self.defaults is TEST_RUNTIME_SETTINGS else {}),
                "OPS_PORT": str(ops_port),
                **overrides,
            },
        )
        name = f"sender_{channel.value}-{self._count}"
        sender = sender_process(channel, name, env, ops_port=ops_port, log_dir=self.log_dir, custom=bool(overrides))
        sender.process.start()
        self.running.append(sender)
        return sender

    def stop(self, sender: SenderProcess, timeout: float = 30.0) -> int | None:
        code = sender.process.stop(timeout)
        if sender in self.running:
            self.running.remove(sender)
        return code

    def stop_all(self) -> None:
        for sender in list(self.running):
            self.stop(sender)

    def ensure(self, *channels: Channel) -> dict[Channel, SenderProcess]:
        """Exactly one default-configured sender per channel (reusing running ones)."""
        found: dict[Channel, SenderProcess] = {}
        for sender in self.running:
            if sender.channel in channels and sender.channel not in found and not sender.custom:
                found[sender.channel] = sender
        for channel in channels:
            if channel not in found:
                found[channel] = self.launch(channel)
        for sender in found.values():
            self.wait_ready(sender)
        return found

    def only(self, *channels: Channel) -> dict[Channel, SenderProcess]:
        """Stop every sender not in ``channels`` (and every custom one); ensure those."""
        for sender in list(self.running):
            if sender.channel not in channels or sender.custom:
                self.stop(sender)
        return self.ensure(*channels)

    def stop_custom(self) -> None:
        """Stop the senders started with non-default settings."""
        for sender in list(self.running):
            if sender.custom:
                self.stop(sender)
