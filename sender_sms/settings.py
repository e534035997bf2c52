"""Settings of the SMS sender: ``SMS_SENDER_*`` for the runtime, ``SMS_*`` for SNS."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.channels import Channel
from shared.sender_settings import SenderSettings
from shared.settings import OpsPort


class SmsSenderSettings(SenderSettings):
    model_config = SettingsConfigDict(env_prefix="SMS_SENDER_")

    channel: ClassVar[Channel] = Channel.SMS

    ops_port: OpsPort = 9001
    rate_limit_per_second: float = Field(default=20.0, gt=0)
    rate_limit_burst: int = Field(default=20, ge=1)
    rate_limit_shared: bool = True  # SNS's SMS quota is the account's

    # Shown as the sender on handsets where the country allows alphanumeric sender ids.
    sms_sender_id: str | None = Field(default=None, validation_alias="SMS_SENDER_ID")
    # The long code, toll-free number or short code SNS sends from, where one is registered.
    sms_origination_number: str | None = Field(default=None, validation_alias="SMS_ORIGINATION_NUMBER")
