"""stack/runner.py's decisions, from the services' own settings: what it starts, what each service gets."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from shared.topology import Channel
from stack.processes import REPO_ROOT
from stack.runner import PROMETHEUS_REPLICAS_FILE, LocalSystem, StackSettings, demo_curl_command, up
from stack.services import CALLBACK_SENDER, GATEWAY, SENDER_BY_CHANNEL, SENDERS, Instance, Service

SETTINGS_VARIABLES = (
    "DATABASE_URL", "AWS_ENDPOINT_URL", "SLACK_API_URL", "SLACK_BOT_TOKEN", "MTLS_DIR", "GATEWAY_PORT", "GATEWAY_OPS_PORT",
    "GATEWAY_TLS_CERT", "GATEWAY_TLS_CRL", "SMS_SENDER_OPS_PORT", "EMAIL_SENDER_OPS_PORT", "SLACK_SENDER_OPS_PORT",
    "STACK_MOTO_PORT", "STACK_WIREMOCK_PORT", "STACK_REPLICAS", "CALLBACKS_OPS_PORT", "CALLBACKS_ALLOW_LOCALHOST",
)  # fmt: skip


def first(system: LocalSystem, service: Service) -> Instance:
    return next(instance for instance in system.instances if instance.service is service)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("MTLS_DIR", str(tmp_path / "certs"))


class TestWhatItStarts:
    def test_everything_by_default(self) -> None:
        system = LocalSystem(with_senders=True)
        assert (system.use_embedded_postgres, system.use_moto, system.use_wiremock) == (True, True, True)
        assert [instance.name for instance in system.instances] == ["gateway", "sender_sms", "sender_email", "sender_slack", "callback_sender"]
        assert [instance.ops_port for instance in system.instances] == [9000, 9001, 9002, 9003, 9004]

    def test_what_the_settings_point_at_instead(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DATABASE_URL", "postgresql://u@db:5432/n")
        monkeypatch.setenv("AWS_ENDPOINT_URL", "")  # the real AWS
        monkeypatch.setenv("SLACK_API_URL", "https://slack.com/api/")
        system = LocalSystem(with_senders=False)
        assert (system.use_embedded_postgres, system.use_moto, system.use_wiremock) == (False, False, False)
        assert (system.database_url, system.aws_endpoint_url, system.slack_api_url) == (
            "postgresql://u@db:5432/n", None, "https://slack.com/api/"
        )
        assert [instance.name for instance in system.instances] == ["gateway"]

    def test_replicas_of_a_sender_each_on_an_ops_port_of_its_own(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("STACK_REPLICAS", "sms=2, slack=3")
        monkeypatch.setenv("SLACK_SENDER_OPS_PORT", "9300")
        system = LocalSystem(with_senders=True)
        assert [(instance.name, instance.ops_port) for instance in system.instances] == [
            ("gateway", 9000), ("sender_sms", 9001), ("sender_sms-2", 9101), ("sender_email", 9002),
            ("sender_slack", 9300), ("sender_slack-2", 9400), ("sender_slack-3", 9500), ("callback_sender", 9004),
        ]  # fmt: skip
        assert system.service_environment(system.instances[2])["SMS_SENDER_OPS_PORT"] == "9101"

    @pytest.mark.parametrize("value", ["fax=2", "sms=0", "sms=11", "sms", "sms=two"])
    def test_replicas_it_refuses(self, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
        monkeypatch.setenv("STACK_REPLICAS", value)
        with pytest.raises(ValidationError, match="STACK_REPLICAS: .* is not CHANNEL=COUNT"):
            StackSettings()

    def test_prometheus_finds_the_replicas_where_the_runner_writes_them(self) -> None:
        config = yaml.safe_load((REPO_ROOT / "monitoring" / "prometheus.yml").read_text())
        (senders,) = [job for job in config["scrape_configs"] if job["job_name"] == "senders"]
        (files,) = [(REPO_ROOT / "monitoring" / path).resolve() for sd in senders["file_sd_configs"] for path in sd["files"]]
        assert files == PROMETHEUS_REPLICAS_FILE.resolve()

    def test_the_file_lists_the_replicas_beyond_the_first(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setattr("stack.runner.PROMETHEUS_REPLICAS_FILE", tmp_path / "prometheus" / "replicas.json")
        monkeypatch.setenv("STACK_REPLICAS", "email=2")
        LocalSystem(with_senders=True).write_prometheus_replicas()
        assert json.loads((tmp_path / "prometheus" / "replicas.json").read_text()) == [
            {"targets": ["127.0.0.1:9102"], "labels": {"service": "sender_email"}}
        ]

    def test_a_dot_env_file_counts_as_the_settings_do(self, tmp_path: Path) -> None:
        (tmp_path / ".env").write_text("DATABASE_URL=postgresql://u@from-env-file/n\n")
        system = LocalSystem(with_senders=True)
        assert (system.use_embedded_postgres, system.database_url) == (False, "postgresql://u@from-env-file/n")


class TestServiceEnvironment:
    def started(self) -> LocalSystem:
        system = LocalSystem(with_senders=True)
        system.database_url, system.aws_endpoint_url, system.slack_api_url = "postgresql://u@h/n", "http://127.0.0.1:4566", "http://127.0.0.1:7000/api/"
        return system

    def test_the_gateway_gets_its_dependencies_and_the_certificates_of_mtls_dir(self, tmp_path: Path) -> None:
        certs = tmp_path / "certs"
        system = self.started()
        assert system.service_environment(first(system, GATEWAY)) == {
            "DATABASE_URL": "postgresql://u@h/n",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
            "GATEWAY_OPS_PORT": "9000",
            "GATEWAY_TLS_CERT": str(certs / "server.crt.pem"),
            "GATEWAY_TLS_KEY": str(certs / "server.key.pem"),
            "GATEWAY_TLS_CA": str(certs / "ca.crt.pem"),
            "GATEWAY_TLS_CRL": str(certs / "crl.pem"),
            "CALLBACKS_ALLOW_LOCALHOST": "true",
        }

    def test_the_gateways_own_certificate_settings_win(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("GATEWAY_TLS_CERT", "/etc/gateway/cert.pem")
        monkeypatch.setenv("GATEWAY_TLS_CRL", "/etc/gateway/crl.pem")
        system = self.started()
        environment = system.service_environment(first(system, GATEWAY))
        assert (environment["GATEWAY_TLS_CERT"], environment["GATEWAY_TLS_CRL"]) == ("/etc/gateway/cert.pem", "/etc/gateway/crl.pem")

    def test_the_slack_sender_gets_the_slack_api_and_keeps_its_own_token(self) -> None:
        system = self.started()
        environment = system.service_environment(first(system, SENDER_BY_CHANNEL[Channel.SLACK]))
        assert environment["SLACK_API_URL"] == "http://127.0.0.1:7000/api/"
        assert "SLACK_BOT_TOKEN" not in environment  # the sender's default, the one compose sets too

    def test_senders_get_only_their_own_settings(self) -> None:
        system = self.started()
        for service in SENDERS:
            environment = system.service_environment(first(system, service))
            ops_port = service.settings_cls.model_config["env_prefix"] + "OPS_PORT"
            assert set(environment) <= {"DATABASE_URL", "AWS_ENDPOINT_URL", "SLACK_API_URL", ops_port}

    def test_the_callback_sender_may_reach_receivers_on_localhost_unless_told_otherwise(self, monkeypatch: pytest.MonkeyPatch) -> None:
        system = self.started()
        assert system.service_environment(first(system, CALLBACK_SENDER)) == {
            "DATABASE_URL": "postgresql://u@h/n",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
            "CALLBACKS_OPS_PORT": "9004",
            "CALLBACKS_ALLOW_LOCALHOST": "true",
        }
        monkeypatch.setenv("CALLBACKS_ALLOW_LOCALHOST", "false")
        system = self.started()
        for service in (GATEWAY, CALLBACK_SENDER):
            assert system.service_environment(first(system, service))["CALLBACKS_ALLOW_LOCALHOST"] == "false"

    def test_the_real_aws_is_an_empty_endpoint(self) -> None:
        system = self.started()
        system.aws_endpoint_url = None
        assert system.service_environment(first(system, GATEWAY))["AWS_ENDPOINT_URL"] == ""


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


class TestPortConflicts:
    def test_a_taken_ops_port_is_named_with_its_setting(self, monkeypatch: pytest.MonkeyPatch, taken_port: int) -> None:
        monkeypatch.setenv("EMAIL_SENDER_OPS_PORT", str(taken_port))
        [conflict] = [c for c in LocalSystem(with_senders=True).port_conflicts() if str(taken_port) in c]
        assert conflict.startswith(f"port {taken_port} (sender_email's ops port, EMAIL_SENDER_OPS_PORT) is already in use")
        assert conflict.endswith("; usually that is an earlier `make up` (the email sender).")

    def test_a_replicas_taken_port_is_named_with_its_offset(self, monkeypatch: pytest.MonkeyPatch, taken_port: int) -> None:
        monkeypatch.setenv("EMAIL_SENDER_OPS_PORT", str(taken_port - 100))
        monkeypatch.setenv("STACK_REPLICAS", "email=2")
        [conflict] = [c for c in LocalSystem(with_senders=True).port_conflicts() if str(taken_port) in c]
        assert conflict.startswith(f"port {taken_port} (sender_email-2's ops port, EMAIL_SENDER_OPS_PORT + 100) is already in use")

    def test_the_emulators_ports_are_checked_only_when_it_starts_them(self, monkeypatch: pytest.MonkeyPatch, taken_port: int) -> None:
        monkeypatch.setenv("STACK_WIREMOCK_PORT", str(taken_port))
        [conflict] = [c for c in LocalSystem(with_senders=True).port_conflicts() if str(taken_port) in c]
        assert conflict.startswith(f"port {taken_port} (WireMock, the local Slack API) is already in use")
        assert conflict.endswith("; set SLACK_API_URL to use another Slack API.")
        monkeypatch.setenv("SLACK_API_URL", "http://elsewhere/api/")
        assert not [c for c in LocalSystem(with_senders=True).port_conflicts() if str(taken_port) in c]


def test_the_demo_curl_uses_the_client_certificate_of_mtls_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "9443")
    curl = demo_curl_command(tmp_path / "certs")
    assert "--cacert certs/ca.crt.pem --cert certs/client.crt.pem --key certs/client.key.pem" in curl
    assert "https://localhost:9443/notifications" in curl


def test_a_setting_a_service_would_refuse_stops_it_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMS_SENDER_OPS_PORT", "99999")
    assert up() == 1
    error = capsys.readouterr().err
    assert "[stack] invalid settings, nothing was started" in error and "SmsSenderSettings" in error and "ops_port" in error
