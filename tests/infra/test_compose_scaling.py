"""`docker compose up --scale sender-sms=3` works, and Prometheus sees every replica: checked offline.

Compose refuses to start a second container of a service that publishes a fixed host port (the port
is taken) or has a ``container_name``. So no sender may do either; its ops port stays inside the
compose network (or, if ever published, takes a host port range). Prometheus must not list targets:
compose's DNS answers a service name with every replica's address, so the compose Prometheus finds
the senders by ``dns_sd_configs`` (type A) on their service names and the ports they listen on,
and labels them as ``monitoring/prometheus.yml`` does, so the alert rules and dashboard work on both.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from callback_sender.settings import CallbackSenderSettings
from shared.sender_settings import SenderSettings
from shared.topology import Channel

REPO = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
LOCAL_PROMETHEUS: dict[str, Any] = yaml.safe_load((REPO / "monitoring" / "prometheus.yml").read_text())
PROMETHEUS_CONFIG_PATH = PurePosixPath("/etc/prometheus/prometheus.yml")

# Every channel's sender is a compose service named after its Dockerfile target.
SENDERS = {channel.value: f"sender-{channel.value}" for channel in Channel}


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return dict(item.split("=", 1) for item in environment if "=" in item)
    return {name: str(value) for name, value in environment.items()}


def _ops_port(service_name: str) -> int:
    (port,) = [value for name, value in _environment(SERVICES[service_name]).items() if name.endswith("OPS_PORT")]
    return int(port)


def fixed_host_ports(ports: list[Any]) -> list[str]:
    """The entries of a service's ``ports`` that publish one fixed host port.

    Short syntax ``[IP:]HOST:CONTAINER[/proto]`` with a single HOST port is fixed; ``CONTAINER``
    alone (a random host port) and ``HOST_FROM-HOST_TO:CONTAINER`` (a range) are not. Long syntax:
    a ``published`` that is a single port.
    """
    fixed = []
    for entry in ports:
        if isinstance(entry, dict):
            published = str(entry.get("published", ""))
            if published and "-" not in published:
                fixed.append(f"{entry.get('host_ip', '')}:{published}:{entry.get('target')}")
            continue
        text = str(entry).split("/", 1)[0]
        # An IPv6 host address is bracketed: [::1]:9001:9001.
        parts = re.sub(r"^\[[^\]]*\]:", "", text).split(":")
        if len(parts) >= 2 and "-" not in parts[-2]:
            fixed.append(str(entry))
    return fixed


class TestTheCheckerItself:
    def test_it_tells_fixed_ports_from_random_ones_and_ranges(self) -> None:
        assert fixed_host_ports(["127.0.0.1:9001:9001", "9001:9001", "[::1]:9001:9001/tcp"]) == [
            "127.0.0.1:9001:9001", "9001:9001", "[::1]:9001:9001/tcp",
        ]  # fmt: skip
        assert fixed_host_ports(["9001", "127.0.0.1:9101-9110:9001", "9101-9110:9001/tcp"]) == []
        assert fixed_host_ports([{"target": 9001, "published": "9001"}]) == [":9001:9001"]
        assert fixed_host_ports([{"target": 9001, "published": "9101-9110"}, {"target": 9001}]) == []


class TestSendersScale:
    def test_every_channel_has_a_sender_service(self) -> None:
        missing = sorted(name for name in SENDERS.values() if name not in SERVICES)
        assert not missing, f"docker-compose.yml has no service {missing}"
        for name in SENDERS.values():
            assert SERVICES[name]["build"]["target"] == name

    @pytest.mark.parametrize("service", [*sorted(SENDERS.values()), "callback-sender"])
    def test_no_fixed_host_port(self, service: str) -> None:
        fixed = fixed_host_ports(SERVICES[service].get("ports", []))
        assert not fixed, (
            f"{service} publishes {fixed}: a second replica could not bind it, so `docker compose up --scale "
            f"{service}=3` fails. Keep the ops port inside the compose network (Prometheus scrapes it there)"
        )

    @pytest.mark.parametrize("service", [*sorted(SENDERS.values()), "callback-sender"])
    def test_no_container_name_and_no_fixed_replica_count(self, service: str) -> None:
        assert "container_name" not in SERVICES[service], f"compose cannot scale {service}: it has a container_name"
        assert "replicas" not in (SERVICES[service].get("deploy") or {}), f"{service}: leave the replica count to --scale"

    @pytest.mark.parametrize("service", sorted(SENDERS.values()))
    def test_a_replica_scaled_away_may_finish_its_sends(self, service: str) -> None:
        # `--scale` down stops replicas with SIGTERM, then SIGKILL after stop_grace_period (10 s by
        # default): a kill mid-send is the one way to a duplicate.
        grace = SERVICES[service].get("stop_grace_period", "10s")
        match = re.fullmatch(r"(\d+)s", grace)
        assert match, f"{service}: write stop_grace_period in seconds, like 40s"
        assert int(match[1]) > SenderSettings.model_fields["shutdown_grace_seconds"].default

    def test_a_callback_sender_stopped_may_finish_its_callbacks(self) -> None:
        grace = re.fullmatch(r"(\d+)s", SERVICES["callback-sender"].get("stop_grace_period", "10s"))
        assert grace and int(grace[1]) > CallbackSenderSettings.model_fields["shutdown_grace_seconds"].default

    def test_the_gateway_keeps_its_ops_port_on_the_host_loopback(self) -> None:
        # One gateway in compose (clients connect to 8443 on the host); its ops port stays reachable.
        port = _ops_port("gateway")
        assert f"127.0.0.1:{port}:{port}" in SERVICES["gateway"]["ports"]


def _prometheus_service() -> dict[str, Any]:
    (service,) = [s for s in SERVICES.values() if str(s.get("image", "")).startswith("prom/prometheus:")]
    return service


def _mounts(service: dict[str, Any]) -> dict[PurePosixPath, Path]:
    """Bind mounts as container path => repository path."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = (volume.split(":")[:2]) if isinstance(volume, str) else (volume["source"], volume["target"])
        mounts[PurePosixPath(target)] = (REPO / source).resolve()
    return mounts


@pytest.fixture(scope="module")
def compose_prometheus() -> dict[str, Any]:
    mounts = _mounts(_prometheus_service())
    assert PROMETHEUS_CONFIG_PATH in mounts, "the prometheus service must mount its config at /etc/prometheus/prometheus.yml"
    config = yaml.safe_load(mounts[PROMETHEUS_CONFIG_PATH].read_text())
    for rule_file in config.get("rule_files", []):
        target = PROMETHEUS_CONFIG_PATH.parent / rule_file
        assert target in mounts, f"{rule_file} is not mounted next to the config in the prometheus service"
        assert mounts[target] == (REPO / "monitoring" / rule_file).resolve()
    return config


def _relabelled_service(job: dict[str, Any], dns_name: str) -> str | None:
    """The ``service`` label a target found as ``dns_name`` gets from the job's relabelling."""
    labels = {"__meta_dns_name": dns_name}
    for rule in job.get("relabel_configs", []):
        if rule.get("target_label") != "service" or rule.get("action", "replace") != "replace":
            continue
        value = ";".join(labels.get(name, "") for name in rule.get("source_labels", []))
        # Prometheus anchors the regex; $1 in the replacement is the first group.
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        if match:
            replacement = rule.get("replacement", "$1")
            labels["service"] = re.sub(r"\$(\d+)", lambda m: match.group(int(m[1])) or "", replacement)
    return labels.get("service")


def _local_targets() -> dict[int, tuple[str, str]]:
    """monitoring/prometheus.yml's targets: port => (job, service label)."""
    targets = {}
    for job in LOCAL_PROMETHEUS["scrape_configs"]:
        for group in job["static_configs"]:
            for target in group["targets"]:
                targets[int(target.rsplit(":", 1)[1])] = (job["job_name"], group["labels"]["service"])
    return targets


class TestPrometheusFindsEveryReplica:
    @pytest.mark.parametrize("service", ["gateway", *sorted(SENDERS.values()), "callback-sender"])
    def test_discovered_by_dns_on_the_service_name_and_its_ops_port(self, compose_prometheus: dict[str, Any], service: str) -> None:
        found = [
            (job, sd)
            for job in compose_prometheus["scrape_configs"]
            for sd in job.get("dns_sd_configs", [])
            if service in sd.get("names", [])
        ]
        assert len(found) == 1, f"{service} must be discovered by exactly one dns_sd_config, found {len(found)}"
        job, sd = found[0]
        assert sd["names"] == [service], "one name per dns_sd_config: the port belongs to that service"
        assert sd.get("type", "SRV") == "A", "compose's DNS has A records per replica, no SRV records"
        assert sd["port"] == _ops_port(service), f"{service} listens on {_ops_port(service)}"

        local_job, local_label = _local_targets()[_ops_port(service)]
        assert job["job_name"] == local_job, "the alert rules select on job: keep the local config's job names"
        assert _relabelled_service(job, service) == local_label

    def test_no_static_targets(self, compose_prometheus: dict[str, Any]) -> None:
        static = [job["job_name"] for job in compose_prometheus["scrape_configs"] if job.get("static_configs")]
        assert not static, f"jobs {static} list fixed targets: with --scale, replicas beyond the first would be missed"

    def test_the_relabelling_checker_applies_rules(self) -> None:
        job = {"relabel_configs": [{"source_labels": ["__meta_dns_name"], "regex": "sender-(.+)", "target_label": "service", "replacement": "sender_$1"}]}
        assert _relabelled_service(job, "sender-sms") == "sender_sms"
        assert _relabelled_service(job, "gateway") is None
