"""`python -m stack up` (what `make up` runs), as a user runs it: it comes up, the curl it prints
delivers a real notification on every channel, the two SMS sender replicas it was asked for
(``STACK_REPLICAS=sms=2``) both consume, and Ctrl-C leaves nothing behind.

Every port is a free one and the certificates go to a temporary folder, so the test never
collides with a stack a developer has running.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.metrics import scrape
from harness.postgres import PostgresServer
from stack.moto import MotoServer
from stack.network import free_port, port_in_use
from stack.processes import REPO_ROOT, ManagedProcess
from stack.runner import PROMETHEUS_REPLICAS_FILE
from stack.services import REPLICA_PORT_STEP
from stack.wiremock_server import WireMock

pytestmark = pytest.mark.timeout(240)


def wait_for_log(process: ManagedProcess, pattern: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = process.log_path.read_text(errors="replace") if process.log_path.exists() else ""
        if re.search(pattern, text):
            return text
        assert process.running, f"the stack exited early:\n{process.log_tail(80)}"
        time.sleep(0.5)
    raise AssertionError(f"{pattern!r} did not appear in time:\n{process.log_tail(80)}")


def free_port_with_replica() -> int:
    """A free port whose second replica's (REPLICA_PORT_STEP above it) is free too."""
    while True:
        port = free_port()
        if port + REPLICA_PORT_STEP <= 65535 and not port_in_use(port + REPLICA_PORT_STEP):
            return port


def sms_sent(ops_port: int) -> float:
    return scrape(f"http://127.0.0.1:{ops_port}", timeout=5).get(("sender_messages_sent_total", (("channel", "sms"),)), 0.0)


def test_up_prints_a_working_curl_and_stops_cleanly(
    postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = {
        name: free_port()
        for name in (
            "GATEWAY_PORT", "GATEWAY_OPS_PORT", "SMS_SENDER_OPS_PORT", "EMAIL_SENDER_OPS_PORT",
            "SLACK_SENDER_OPS_PORT", "CALLBACKS_OPS_PORT", "STACK_MOTO_PORT", "STACK_WIREMOCK_PORT",
        )
    }
    ports["SMS_SENDER_OPS_PORT"] = free_port_with_replica()
    ports["SMS_SENDER_OPS_PORT (replica 2)"] = second_sms = ports["SMS_SENDER_OPS_PORT"] + REPLICA_PORT_STEP
    database_url = postgres_server.create_database()
    env = {
        **{name: str(port) for name, port in ports.items() if " " not in name},
        "DATABASE_URL": database_url,
        "MTLS_DIR": str(tmp_path / "certs"),
        "STACK_REPLICAS": "sms=2",
    }
    # The runner starts its own emulators only when these are unset.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("SLACK_API_URL", raising=False)
    stack = ManagedProcess("stack", [sys.executable, "-m", "stack", "up"], env=env, cwd=REPO_ROOT, log_path=tmp_path / "stack.log")
    stack.start()
    try:
        banner = wait_for_log(stack, r"Local stack ready in", timeout=150)
        curl = banner.split("Send a notification (from the repository root):", 1)[1].strip()
        assert curl.startswith("curl ")
        result = subprocess.run(["bash", "-c", curl], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        notification = json.loads(result.stdout.strip().splitlines()[-1])
        assert notification["channels"] == ["sms", "email", "slack"]

        # Read back through the runner's emulators (not started by us: only asked).
        moto = MotoServer(ports["STACK_MOTO_PORT"])
        wiremock = WireMock(ports["STACK_WIREMOCK_PORT"])
        text = notification["message"]
        deadline = time.monotonic() + 60
        while True:
            sms = [m for m in moto.sent_sms() if m["message"] == text]
            emails = [m for m in moto.sent_emails() if m["body"] == text]
            posts = [r for r in wiremock.requests() if isinstance(r["body"], dict) and r["body"].get("text") == text]
            if sms and emails and posts:
                break
            assert time.monotonic() < deadline, f"not delivered everywhere: sms={sms} email={emails} slack={posts}"
            time.sleep(0.5)
        assert [m["phone_number"] for m in sms] == ["+14155552671"]
        assert len(emails) == 1 and len(posts) == 1

        # Both SMS replicas: in the banner with their own ops port and log, known to Prometheus, consuming.
        assert re.search(rf"sender_sms-2 +ops: http://127\.0\.0\.1:{second_sms} +log: \S*sender_sms-2\.log", banner), banner
        assert json.loads(PROMETHEUS_REPLICAS_FILE.read_text()) == [{"targets": [f"127.0.0.1:{second_sms}"], "labels": {"service": "sender_sms"}}]
        replicas = (ports["SMS_SENDER_OPS_PORT"], second_sms)
        deadline = time.monotonic() + 90
        while not all(sms_sent(port) for port in replicas):
            assert time.monotonic() < deadline, f"not both SMS replicas sent: {[sms_sent(port) for port in replicas]}"
            # More notifications until each replica has taken some (which one receives a message is SQS's choice).
            for _ in range(5):
                more = subprocess.run(["bash", "-c", curl], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
                assert more.returncode == 0, more.stdout + more.stderr
            time.sleep(1)
    finally:
        # Ctrl-C, as a user would press it in the terminal: SIGINT to the process group.
        if stack.pid is not None and stack.running:
            os.killpg(stack.pid, signal.SIGINT)
        code = stack.wait(timeout=60)
        postgres_server.drop_database(database_url)
    assert code == 0, stack.log_tail(40)
    assert not [name for name, port in ports.items() if port_in_use(port)], "a component outlived the stack"
