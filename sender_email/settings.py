"""Settings of the email sender: ``EMAIL_SENDER_*`` for the runtime, ``EMAIL_FROM_ADDRESS`` for SES."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.channels import Channel
from shared.sender_settings import SenderSettings
from shared.receipts import UNKNOWN_RECEIPT_RETRY_SECONDS
from shared.settings import OpsPort
from shared.topology import EMAIL_CONFIGURATION_SET, EMAIL_EVENTS_DEAD_LETTER_QUEUE, EMAIL_EVENTS_QUEUE


class EmailSenderSettings(SenderSettings):
    model_config = SettingsConfigDict(env_prefix="EMAIL_SENDER_")

    channel: ClassVar[Channel] = Channel.EMAIL
    known_providers: ClassVar[tuple[str, ...]] = ("ses",)
    # EMAIL_SENDER_PROVIDERS=ses,ses:eu-west-1: SES in AWS_REGION, then SES in eu-west-1 (the same
    # From address and configuration set; stack/prepare.py prepares both regions).
    regional_providers: ClassVar[tuple[str, ...]] = ("ses",)

    ops_port: OpsPort = 9002
    # SES's default sending quota is 14 messages per second.
    rate_limit_per_second: float = Field(default=14.0, gt=0)
    rate_limit_burst: int = Field(default=14, ge=1)
    rate_limit_shared: bool = True  # SES's sending quota is the account's

    # Must be a verified SES identity (the address or its domain).
    email_from_address: str = Field(default="sender@notifications.com", validation_alias="EMAIL_FROM_ADDRESS")
    # Named on every SendEmail: its event destination publishes the receipts to email_events.
    email_configuration_set: str = Field(default=EMAIL_CONFIGURATION_SET, validation_alias="EMAIL_CONFIGURATION_SET")
    # The queue of SES events this sender consumes besides its notifications (receipts);
    # empty: no receipts are read.
    receipts_queue_name: str = EMAIL_EVENTS_QUEUE
    receipts_dead_letter_queue_name: str = EMAIL_EVENTS_DEAD_LETTER_QUEUE
    # Messages of the receipts queue worked on at once (each is one database statement).
    receipts_concurrency: int = Field(default=16, ge=1, le=1000)
    # How long an event for a message id no delivery has yet is tried again before it is dropped.
    receipts_unknown_retry_seconds: float = Field(default=UNKNOWN_RECEIPT_RETRY_SECONDS, ge=0)

    @property
    def ses_regions(self) -> tuple[str, ...]:
        """The regions the sender sends from, in its providers' order."""
        return tuple(dict.fromkeys(self.provider_region(name) for name in self.providers))
