"""monitoring/: the alert rules are valid and do what they say (promtool), and every metric a rule
or a dashboard panel uses is one the services really export (scraped from a gateway and a sender
started as processes).

promtool comes from the Debian package ``prometheus``; ``make install`` installs it when run as
root. These tests install nothing: without promtool they fail and say how to get it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from mtls import pki
from mtls.paths import PkiPaths
from stack.moto import MotoServer
from stack.network import free_port, wait_for_http
from stack.processes import ManagedProcess

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "notifications.json"
# Every metric of ours is named gateway_*, sender_* or callback_*; Prometheus' own (up, time()) are not checked.
OUR_METRIC = re.compile(r"\b(?:gateway|sender|callback)_[a-z0-9_]+\b")
SAMPLE_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"), "gauge": ("",)}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail(
            "promtool is not installed. Install the Debian package: `sudo apt-get update && sudo apt-get install -y prometheus` "
            "(`make install` does it when run as root), or put a promtool from a Prometheus release on PATH."
        )
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False, cwd=MONITORING)


class TestPromtool:
    def test_rules_are_valid(self) -> None:
        result = promtool("check", "rules", "alerts.yml")
        assert result.returncode == 0, result.stdout + result.stderr

    # prometheus.yml for the local stack, prometheus-compose.yml for docker compose.
    @pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-compose.yml"])
    def test_scrape_config_is_valid(self, config: str) -> None:
        result = promtool("check", "config", config)
        assert result.returncode == 0, result.stdout + result.stderr

    def test_rules_fire_when_they_should(self) -> None:
        result = promtool("test", "rules", "alerts_test.yml")
        assert result.returncode == 0, result.stdout + result.stderr


def rule_expressions() -> dict[str, str]:
    groups = yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def panel_expressions() -> dict[str, str]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found[f"{panel['title']} [{target['refId']}]"] = target["expr"]
    return found


class TestDefinitions:
    def test_the_scrape_config_covers_the_five_ops_ports(self) -> None:
        config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
        targets = {t for job in config["scrape_configs"] for group in job["static_configs"] for t in group["targets"]}
        assert targets == {f"127.0.0.1:{port}" for port in (9000, 9001, 9002, 9003, 9004)}
        assert config["rule_files"] == ["alerts.yml"]

    def test_the_dashboard_is_provisioned_and_covers_every_channel_concern(self) -> None:
        provider = yaml.safe_load((MONITORING / "grafana/provisioning/dashboards/notifications.yml").read_text())
        assert provider["providers"][0]["type"] == "file"
        datasource = yaml.safe_load((MONITORING / "grafana/provisioning/datasources/prometheus.yml").read_text())
        assert datasource["datasources"][0]["uid"] == "prometheus"
        used = " ".join(panel_expressions().values())
        for metric in (
            "sender_messages_sent_total", "sender_send_duration_seconds_bucket", "sender_messages_failed_total", "sender_queue_depth",
            "callback_deliveries_total", "callback_events_pending", "callback_event_delay_seconds_bucket",
        ):
            assert metric in used, f"no panel shows {metric}"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    """Every sample name a gateway, a sender and the callback sender expose on /metrics, as real
    processes.

    None needs a database to serve /metrics, and the sender not even its queues; the gateway
    needs SNS (moto) to start.
    """
    directory = tmp_path_factory.mktemp("monitoring")
    pki.init_pki(directory / "certs")
    moto = MotoServer(free_port(), log_path=directory / "moto.log").start()
    gateway_ops, sender_ops, callbacks_ops = free_port(), free_port(), free_port()
    common = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:9/none", "AWS_ENDPOINT_URL": moto.endpoint_url, "LOG_FORMAT": "json"}
    certs = directory / "certs"
    processes = [
        ManagedProcess(
            "gateway",
            [sys.executable, "-m", "gateway"],
            env={
                **common,
                "GATEWAY_HOST": "127.0.0.1",
                "GATEWAY_PORT": str(free_port()),
                "GATEWAY_OPS_PORT": str(gateway_ops),
                # The certificates from MTLS_DIR, as the gateway's settings find them.
                "MTLS_DIR": str(certs),
                "GATEWAY_TLS_CRL": str(PkiPaths.in_directory(certs).crl),
            },
            cwd=REPO,
            log_path=directory / "gateway.log",
        ),
        ManagedProcess(
            "sender_sms", [sys.executable, "-m", "sender_sms"], env={**common, "SMS_SENDER_OPS_PORT": str(sender_ops)},
            cwd=REPO, log_path=directory / "sender_sms.log",
        ),
        ManagedProcess(
            "callback_sender", [sys.executable, "-m", "callback_sender"], env={**common, "CALLBACKS_OPS_PORT": str(callbacks_ops)},
            cwd=REPO, log_path=directory / "callback_sender.log",
        ),
    ]
    try:
        names: set[str] = set()
        for process, port in zip(processes, (gateway_ops, sender_ops, callbacks_ops), strict=True):
            process.start()
            url = f"http://127.0.0.1:{port}/metrics"
            wait_for_http(url, timeout=60, process=process)
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
            for family in text_string_to_metric_families(text):
                names.update(family.name + suffix for suffix in SAMPLE_SUFFIXES.get(family.type, ("",)))
                names.update(sample.name for sample in family.samples)
        yield names
    finally:
        for process in processes:
            process.stop()
        moto.stop()


class TestEveryMetricUsedIsExported:
    @pytest.mark.parametrize(("source", "expressions"), [("alerts.yml", rule_expressions()), ("dashboard", panel_expressions())])
    def test_metrics_exist(self, exported: set[str], source: str, expressions: dict[str, str]) -> None:
        missing = {
            f"{where}: {metric}" for where, expression in expressions.items() for metric in OUR_METRIC.findall(expression) if metric not in exported
        }
        assert not missing, f"{source} uses metrics no service exports: {sorted(missing)}"

    def test_the_new_gauges_are_exported(self, exported: set[str]) -> None:
        for metric in (
            "sender_queue_depth",
            "sender_dead_letter_oldest_age_seconds",
            "gateway_crl_next_update_timestamp_seconds",
            "gateway_server_certificate_expiry_timestamp_seconds",
            "gateway_outbox_scheduled",
        ):
            assert metric in exported
