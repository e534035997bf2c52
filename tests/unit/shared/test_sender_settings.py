"""The senders' settings: prefixes, unprefixed provider settings, defaults, start-up checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sender_email.settings import EmailSenderSettings
from sender_slack.settings import SlackSenderSettings
from sender_sms.settings import SmsSenderSettings
from shared.settings import environment_names
from shared.topology import MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT_SECONDS


class TestDefaults:
    @pytest.mark.parametrize(
        ("settings_class", "port", "rate", "burst", "queue"),
        [
            (SmsSenderSettings, 9001, 20.0, 20, "sms_notifications"),
            (EmailSenderSettings, 9002, 14.0, 14, "email_notifications"),
            (SlackSenderSettings, 9003, 1.0, 5, "slack_notifications"),
        ],
    )
    def test_per_channel_defaults(self, settings_class: type, port: int, rate: float, burst: int, queue: str) -> None:
        settings = settings_class()
        assert (settings.ops_host, settings.ops_port) == ("127.0.0.1", port)
        assert (settings.rate_limit_per_second, settings.rate_limit_burst) == (rate, burst)
        assert (settings.queue_name, settings.dead_letter_queue_name) == (queue, f"{queue}_dlq")
        assert settings.concurrency == 32
        assert settings.visibility_timeout_seconds == VISIBILITY_TIMEOUT_SECONDS
        assert settings.max_receive_count == MAX_RECEIVE_COUNT

    def test_provider_defaults(self) -> None:
        assert EmailSenderSettings().email_from_address == "sender@notifications.com"
        slack = SlackSenderSettings()
        assert slack.slack_api_url == "http://localhost:7000/api/"
        assert slack.slack_bot_token.get_secret_value() == "xoxb-local-development"
        assert "xoxb" not in repr(slack), "the token is not printed"
        sms = SmsSenderSettings()
        assert (sms.sms_sender_id, sms.sms_origination_number) == (None, None)


class TestEnvironment:
    def test_runtime_settings_are_prefixed_per_sender(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SMS_SENDER_CONCURRENCY", "7")
        monkeypatch.setenv("SLACK_SENDER_OPS_PORT", "9100")
        monkeypatch.setenv("EMAIL_SENDER_SHUTDOWN_GRACE_SECONDS", "5")
        assert SmsSenderSettings().concurrency == 7
        assert EmailSenderSettings().concurrency == 32
        assert SlackSenderSettings().ops_port == 9100
        assert EmailSenderSettings().shutdown_grace_seconds == 5

    def test_provider_settings_are_unprefixed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SLACK_API_URL", "https://slack.com/api/")
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-real")
        monkeypatch.setenv("EMAIL_FROM_ADDRESS", "alerts@example.org")
        monkeypatch.setenv("SMS_SENDER_ID", "ACME")
        monkeypatch.setenv("SMS_ORIGINATION_NUMBER", "+18005550100")
        assert SlackSenderSettings().slack_api_url == "https://slack.com/api/"
        assert SlackSenderSettings().slack_bot_token.get_secret_value() == "xoxb-real"
        assert EmailSenderSettings().email_from_address == "alerts@example.org"
        assert SmsSenderSettings().sms_sender_id == "ACME"
        assert SmsSenderSettings().sms_origination_number == "+18005550100"

    def test_environment_names(self) -> None:
        names = environment_names(SlackSenderSettings)
        assert {"SLACK_SENDER_CONCURRENCY", "SLACK_SENDER_RATE_LIMIT_PER_SECOND", "SLACK_SENDER_RATE_LIMIT_BURST",
                "SLACK_SENDER_SEND_TIMEOUT_SECONDS", "SLACK_SENDER_SHUTDOWN_GRACE_SECONDS", "SLACK_SENDER_OPS_HOST",
                "SLACK_SENDER_OPS_PORT", "SLACK_API_URL", "SLACK_BOT_TOKEN", "DATABASE_URL"} <= names
        assert {"SMS_SENDER_ID", "SMS_ORIGINATION_NUMBER", "SMS_SENDER_CONCURRENCY"} <= environment_names(SmsSenderSettings)
        assert "EMAIL_FROM_ADDRESS" in environment_names(EmailSenderSettings)


class TestValidation:
    def test_heartbeat_must_beat_the_visibility_timeout(self) -> None:
        with pytest.raises(ValidationError, match="heartbeat_seconds"):
            SmsSenderSettings(visibility_timeout_seconds=10, heartbeat_seconds=6)

    @pytest.mark.parametrize(
        "overrides",
        [{"concurrency": 0}, {"rate_limit_per_second": 0}, {"rate_limit_burst": 0}, {"receive_wait_seconds": 21}],
    )
    def test_rejects_nonsense(self, overrides: dict[str, float]) -> None:
        with pytest.raises(ValidationError):
            SmsSenderSettings(**overrides)

    def test_queue_names_can_be_overridden(self) -> None:
        settings = SmsSenderSettings(queue_name="q", dead_letter_queue_name="q_dlq")
        assert (settings.queue_name, settings.dead_letter_queue_name) == ("q", "q_dlq")


class TestEmailProviders:
    def test_default_is_ses_in_aws_region_only(self) -> None:
        settings = EmailSenderSettings()
        assert (settings.providers, settings.ses_regions) == (("ses",), ("us-east-1",))

    def test_ses_in_a_second_region(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("EMAIL_SENDER_PROVIDERS", "ses, ses:eu-west-1")
        monkeypatch.setenv("AWS_REGION", "us-west-2")
        settings = EmailSenderSettings()
        assert settings.providers == ("ses", "ses:eu-west-1")
        assert settings.ses_regions == ("us-west-2", "eu-west-1")
        assert [settings.provider_region(name) for name in settings.providers] == ["us-west-2", "eu-west-1"]

    @pytest.mark.parametrize("region", ["ap-southeast-2", "us-gov-west-1", "cn-north-1", "eu-central-1"])
    def test_any_aws_looking_region(self, region: str) -> None:
        assert EmailSenderSettings(providers=f"ses:{region}").ses_regions == (region,)

    @pytest.mark.parametrize("name", ["ses:", "ses:EU-WEST-1", "ses:europe", "ses:eu-west", "ses:eu-west-1:x", "smtp", "sns:eu-west-1"])
    def test_rejects_anything_else_clearly(self, name: str) -> None:
        with pytest.raises(ValidationError, match=r"EMAIL_SENDER_PROVIDERS: unknown provider .*known: ses, ses:<region>"):
            EmailSenderSettings(providers=f"ses,{name}")

    def test_rejects_the_same_region_twice(self) -> None:
        with pytest.raises(ValidationError, match="names a provider twice"):
            EmailSenderSettings(providers="ses,ses:us-east-1")

    def test_sms_providers_take_no_region(self) -> None:
        with pytest.raises(ValidationError, match="SMS_SENDER_PROVIDERS: unknown provider 'sns:eu-west-1'; known: sns, twilio") as caught:
            SmsSenderSettings(providers="sns,sns:eu-west-1")
        assert "<region>" not in str(caught.value)
