"""stack/runner.py's decisions, from the services' own settings: what it starts, what each service gets."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.topology import Channel
from stack.runner import LocalSystem, demo_curl_command, up
from stack.services import CALLBACK_SENDER, GATEWAY, SENDER_BY_CHANNEL, SENDERS

SETTINGS_VARIABLES = (
    "DATABASE_URL", "AWS_ENDPOINT_URL", "SLACK_API_URL", "SLACK_BOT_TOKEN", "MTLS_DIR", "GATEWAY_PORT", "GATEWAY_OPS_PORT",
    "GATEWAY_TLS_CERT", "GATEWAY_TLS_CRL", "SMS_SENDER_OPS_PORT", "EMAIL_SENDER_OPS_PORT", "SLACK_SENDER_OPS_PORT",
    "STACK_MOTO_PORT", "STACK_WIREMOCK_PORT", "CALLBACKS_OPS_PORT", "CALLBACKS_ALLOW_LOCALHOST",
)  # fmt: skip


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
        assert [service.module for service in system.services] == ["gateway", "sender_sms", "sender_email", "sender_slack", "callback_sender"]

    def test_what_the_settings_point_at_instead(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DATABASE_URL", "postgresql://u@db:5432/n")
        monkeypatch.setenv("AWS_ENDPOINT_URL", "")  # the real AWS
        monkeypatch.setenv("SLACK_API_URL", "https://slack.com/api/")
        system = LocalSystem(with_senders=False)
        assert (system.use_embedded_postgres, system.use_moto, system.use_wiremock) == (False, False, False)
        assert (system.database_url, system.aws_endpoint_url, system.slack_api_url) == (
            "postgresql://u@db:5432/n", None, "https://slack.com/api/"
        )
        assert [service.module for service in system.services] == ["gateway"]

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
        assert self.started().service_environment(GATEWAY) == {
            "DATABASE_URL": "postgresql://u@h/n",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
            "GATEWAY_TLS_CERT": str(certs / "server.crt.pem"),
            "GATEWAY_TLS_KEY": str(certs / "server.key.pem"),
            "GATEWAY_TLS_CA": str(certs / "ca.crt.pem"),
            "GATEWAY_TLS_CRL": str(certs / "crl.pem"),
            "CALLBACKS_ALLOW_LOCALHOST": "true",
        }

    def test_the_gateways_own_certificate_settings_win(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("GATEWAY_TLS_CERT", "/etc/gateway/cert.pem")
        monkeypatch.setenv("GATEWAY_TLS_CRL", "/etc/gateway/crl.pem")
        environment = self.started().service_environment(GATEWAY)
        assert (environment["GATEWAY_TLS_CERT"], environment["GATEWAY_TLS_CRL"]) == ("/etc/gateway/cert.pem", "/etc/gateway/crl.pem")

    def test_the_slack_sender_gets_the_slack_api_and_keeps_its_own_token(self) -> None:
        environment = self.started().service_environment(SENDER_BY_CHANNEL[Channel.SLACK])
        assert environment["SLACK_API_URL"] == "http://127.0.0.1:7000/api/"
        assert "SLACK_BOT_TOKEN" not in environment  # the sender's default, the one compose sets too

    def test_senders_get_only_their_own_settings(self) -> None:
        for service in SENDERS:
            environment = self.started().service_environment(service)
            assert set(environment) <= {"DATABASE_URL", "AWS_ENDPOINT_URL", "SLACK_API_URL"}

    def test_the_callback_sender_may_reach_receivers_on_localhost_unless_told_otherwise(self, monkeypatch: pytest.MonkeyPatch) -> None:
        assert self.started().service_environment(CALLBACK_SENDER) == {
            "DATABASE_URL": "postgresql://u@h/n",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
            "CALLBACKS_ALLOW_LOCALHOST": "true",
        }
        monkeypatch.setenv("CALLBACKS_ALLOW_LOCALHOST", "false")
        for service in (GATEWAY, CALLBACK_SENDER):
            assert self.started().service_environment(service)["CALLBACKS_ALLOW_LOCALHOST"] == "false"

    def test_the_real_aws_is_an_empty_endpoint(self) -> None:
        system = self.started()
        system.aws_endpoint_url = None
        assert system.service_environment(GATEWAY)["AWS_ENDPOINT_URL"] == ""


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
