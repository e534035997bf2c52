"""Settings of the email sender: ``EMAIL_SENDER_*`` for the runtime, ``EMAIL_FROM_ADDRESS`` for SES."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.channels import Channel
from shared.sender_settings import SenderSettings
from shared.settings import OpsPort


class EmailSenderSettings(SenderSettings):
    model_config = SettingsConfigDict(env_prefix="EMAIL_SENDER_")

    channel: ClassVar[Channel] = Channel.EMAIL

    ops_port: OpsPort = 9002
    # SES's default sending quota is 14 messages per second.
    rate_limit_per_second: float = Field(default=14.0, gt=0)
    rate_limit_burst: int = Field(default=14, ge=1)
    rate_limit_shared: bool = True  # SES's sending quota is the account's

    # Must be a verified SES identity (the address or its domain).
    email_from_address: str = Field(default="sender@notifications.com", validation_alias="EMAIL_FROM_ADDRESS")
