"""Settings of the SMS sender: ``SMS_SENDER_*`` for the runtime, ``SMS_*`` for SNS."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.channels import Channel
from shared.sender_settings import SenderSettings
from shared.receipts import UNKNOWN_RECEIPT_RETRY_SECONDS
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

    # Receipts: SNS's delivery status logs in CloudWatch Logs, read by a task of this process
    # (sender_sms/delivery_logs.py); false: not read.
    delivery_logs_enabled: bool = True
    delivery_logs_poll_seconds: float = Field(default=10.0, gt=0)
    # How far before the newest event read each poll reads again (late-indexed events).
    delivery_logs_overlap_seconds: float = Field(default=120.0, ge=0)
    # How long a record for a message id no delivery has yet is tried again before it is dropped.
    receipts_unknown_retry_seconds: float = Field(default=UNKNOWN_RECEIPT_RETRY_SECONDS, ge=0)
