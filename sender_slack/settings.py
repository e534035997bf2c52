"""Settings of the Slack sender: ``SLACK_SENDER_*`` for the runtime, ``SLACK_*`` for the Web API."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.channels import Channel
from shared.sender_settings import SenderSettings
from shared.settings import OpsPort


class SlackSenderSettings(SenderSettings):
    model_config = SettingsConfigDict(env_prefix="SLACK_SENDER_")

    channel: ClassVar[Channel] = Channel.SLACK
    known_providers: ClassVar[tuple[str, ...]] = ("slack",)

    ops_port: OpsPort = 9003
    # Per Slack channel (chat.postMessage allows about one message per second per channel,
    # with short bursts).
    rate_limit_per_second: float = Field(default=1.0, gt=0)
    rate_limit_burst: int = Field(default=5, ge=1)

    # The local stack's WireMock stands in for Slack; production sets https://slack.com/api/.
    slack_api_url: str = Field(default="http://localhost:7000/api/", validation_alias="SLACK_API_URL")
    slack_bot_token: SecretStr = Field(default=SecretStr("xoxb-local-development"), validation_alias="SLACK_BOT_TOKEN")
