"""shared/settings.py: the environment a settings class reads, and the one that gives it values."""

from __future__ import annotations

from pathlib import Path

import pytest

import mtls
from gateway.settings import GatewaySettings, RateLimit
from sender_email.settings import EmailSenderSettings
from sender_slack.settings import SlackSenderSettings
from sender_sms.settings import SmsSenderSettings
from shared.settings import ServiceSettings, environment_for, environment_name, to_asyncpg_url


class TestEnvironmentName:
    def test_prefixed_and_unprefixed_fields(self) -> None:
        assert environment_name(SlackSenderSettings, "concurrency") == "SLACK_SENDER_CONCURRENCY"
        assert environment_name(SlackSenderSettings, "slack_api_url") == "SLACK_API_URL"
        assert environment_name(SlackSenderSettings, "database_url") == "DATABASE_URL"
        assert environment_name(GatewaySettings, "ops_port") == "GATEWAY_OPS_PORT"


class TestOpsPort:
    def test_each_service_has_its_own_default_under_its_prefix(self) -> None:
        defaults = {cls: cls().ops_port for cls in (GatewaySettings, SmsSenderSettings, EmailSenderSettings, SlackSenderSettings)}
        assert list(defaults.values()) == [9000, 9001, 9002, 9003]
        assert {cls().ops_host for cls in defaults} == {"127.0.0.1"}

    def test_out_of_range_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("EMAIL_SENDER_OPS_PORT", "70000")
        with pytest.raises(ValueError, match="ops_port"):
            EmailSenderSettings()


class TestEnvironmentFor:
    def test_values_read_back_as_given(self, monkeypatch: pytest.MonkeyPatch) -> None:
        values = {
            "database_url": "postgresql://u@h:5/db",
            "port": 9443,
            "rate_limit_enabled": True,
            "rate_limit_overrides": {"billing": RateLimit(rate=0.5, burst=2)},
            "tls_crl": Path("/run/mtls/crl.pem"),
            "outbox_grace_seconds": 2.5,
        }
        environment = environment_for(GatewaySettings, **values)
        assert set(environment) == {
            "DATABASE_URL", "GATEWAY_PORT", "GATEWAY_RATE_LIMIT_ENABLED", "GATEWAY_RATE_LIMIT_OVERRIDES",
            "GATEWAY_TLS_CRL", "GATEWAY_OUTBOX_GRACE_SECONDS",
        }  # fmt: skip
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        read = GatewaySettings()
        assert {name: getattr(read, name) for name in values} == values

    def test_a_secret_is_passed_as_itself_and_none_as_empty(self, monkeypatch: pytest.MonkeyPatch) -> None:
        environment = environment_for(SlackSenderSettings, slack_bot_token="xoxb-1", aws_endpoint_url=None)
        assert environment == {"SLACK_BOT_TOKEN": "xoxb-1", "AWS_ENDPOINT_URL": ""}
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        read = SlackSenderSettings()
        assert (read.slack_bot_token.get_secret_value(), read.aws_endpoint_url) == ("xoxb-1", None)

    def test_strings_are_validated_like_the_environment(self) -> None:
        assert environment_for(SmsSenderSettings, concurrency="16") == {"SMS_SENDER_CONCURRENCY": "16"}
        with pytest.raises(ValueError, match="concurrency"):
            environment_for(SmsSenderSettings, concurrency="many")

    def test_a_misspelt_setting_is_refused(self) -> None:
        with pytest.raises(ValueError, match="ServiceSettings has no setting concurrency"):
            environment_for(ServiceSettings, concurrency=3)


class TestGatewayCertificates:
    def test_the_defaults_are_in_mtls_dir_read_when_the_settings_are(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("MTLS_DIR", str(tmp_path))
        settings = GatewaySettings()
        assert (settings.tls_cert, settings.tls_key, settings.tls_ca) == (
            tmp_path / "server.crt.pem",
            tmp_path / "server.key.pem",
            tmp_path / "ca.crt.pem",
        )
        monkeypatch.delenv("MTLS_DIR")
        assert GatewaySettings().tls_ca == Path(mtls.__file__).resolve().parent / "ca.crt.pem"


class TestSettings:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("postgresql://u@h:5432/d", "postgresql+asyncpg://u@h:5432/d"),
            ("postgres://u@h/d", "postgresql+asyncpg://u@h/d"),
            ("postgresql+asyncpg://u@/d?host=/tmp", "postgresql+asyncpg://u@/d?host=/tmp"),
        ],
    )
    def test_database_url_forms(self, url: str, expected: str) -> None:
        assert to_asyncpg_url(url) == expected

    def test_other_schemes_refused(self) -> None:
        with pytest.raises(ValueError, match="postgresql://"):
            to_asyncpg_url("mysql://x")
