"""The settings every sender shares; each sender subclasses it with its prefix and defaults.

Runtime settings are prefixed per sender (``SMS_SENDER_CONCURRENCY``, ``SLACK_SENDER_OPS_PORT``)
because one machine or compose file may run all three. Provider settings (``SLACK_API_URL``,
``EMAIL_FROM_ADDRESS``) are declared unprefixed by each sender's own settings class.
"""

from __future__ import annotations

import json
from typing import Annotated, ClassVar

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from shared.channels import Channel, channel_spec
from shared.circuit_breaker import BreakerPolicy
from shared.settings import AWS_REGION_PATTERN, ServerSettings
from shared.topology import MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT_SECONDS


class SenderSettings(ServerSettings):
    channel: ClassVar[Channel]
    # The providers this sender can send through; the first is the default list.
    known_providers: ClassVar[tuple[str, ...]]
    # Those of them that may also be named "<provider>:<region>": the same provider in another
    # AWS region ("ses:eu-west-1"); plain "<provider>" is the one in AWS_REGION.
    regional_providers: ClassVar[tuple[str, ...]] = ()

    # The channel's providers in failover order (shared/failover.py); comma-separated in the
    # environment (SMS_SENDER_PROVIDERS=sns,twilio). Empty means the first known one.
    providers: Annotated[tuple[str, ...], NoDecode] = ()
    # Each provider's circuit breaker (shared/circuit_breaker.py): it opens after this many
    # transient failures in a row, or when more than breaker_error_rate of the calls of the last
    # breaker_window_seconds failed (once there were breaker_minimum_calls), and lets one probe
    # through after breaker_cooldown_seconds.
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_error_rate: float = Field(default=0.5, gt=0, le=1)
    breaker_window_seconds: float = Field(default=60.0, gt=0)
    breaker_minimum_calls: int = Field(default=20, ge=1)
    breaker_cooldown_seconds: float = Field(default=30.0, gt=0)

    # How many one-off messages one process works on at once (received and not yet finished) ...
    concurrency: int = Field(default=32, ge=1, le=1000)
    # ... and how many bulk ones (batch items) beside them, from the channel's bulk queue: a few,
    # so a bulk backlog never takes the one-offs' slots (the provider rate limit is shared).
    bulk_concurrency: int = Field(default=8, ge=1, le=1000)
    # Messages received while every slot is busy, held (their visibility kept by the heartbeat)
    # so that a freed slot starts the next send at once instead of waiting for a ReceiveMessage.
    receive_ahead: int = Field(default=20, ge=0, le=1000)
    # Concurrent ReceiveMessage calls; 0 means one per 10 slots (SQS returns at most 10).
    receivers: int = Field(default=0, ge=0, le=100)
    rate_limit_per_second: float = Field(default=10.0, gt=0)
    rate_limit_burst: int = Field(default=10, ge=1)
    # One bucket for every replica (in Postgres, shared/provider_rate_limit.py) instead of one per
    # process: for providers whose quota is the account's (SNS SMS, SES), so N replicas stay within it.
    rate_limit_shared: bool = False
    send_timeout_seconds: float = Field(default=10.0, gt=0)
    shutdown_grace_seconds: float = Field(default=25.0, ge=0)
    # Passed on every ReceiveMessage, so the sender knows exactly when a message it holds would
    # reappear; the heartbeat extends it by this much while a message is still being worked on.
    visibility_timeout_seconds: int = Field(default=VISIBILITY_TIMEOUT_SECONDS, ge=2, le=43200)
    heartbeat_seconds: float = Field(default=20.0, gt=0)
    receive_wait_seconds: int = Field(default=20, ge=0, le=20)
    backoff_base_seconds: float = Field(default=5.0, gt=0)
    backoff_max_seconds: float = Field(default=300.0, gt=0)
    delete_flush_seconds: float = Field(default=0.2, gt=0)
    # Receives after which a transient failure is final; must equal the redrive policy's
    # maxReceiveCount, because the next receive moves the message to the DLQ.
    max_receive_count: int = Field(default=MAX_RECEIVE_COUNT, ge=1)
    # Empty means the channel's queues from shared/topology.py.
    queue_name: str = ""
    dead_letter_queue_name: str = ""
    bulk_queue_name: str = ""
    bulk_dead_letter_queue_name: str = ""

    @field_validator("providers", mode="before")
    @classmethod
    def _providers_comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            # JSON too: environment_for (the tests' and stack's launcher) writes lists so.
            value = json.loads(text) if text.startswith("[") else [part.strip() for part in text.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _check_providers(self) -> SenderSettings:
        if not self.providers:
            self.providers = self.known_providers[:1]
        prefix = self.model_config.get("env_prefix", "")
        unknown = [name for name in self.providers if not self._is_known_provider(name)]
        if unknown:
            known = [*self.known_providers, *(f"{name}:<region> (an AWS region, e.g. eu-west-1)" for name in self.regional_providers)]
            raise ValueError(f"{prefix}PROVIDERS: unknown provider {', '.join(map(repr, unknown))}; known: {', '.join(known)}")
        # "ses" and "ses:us-east-1" are one provider when AWS_REGION is us-east-1.
        if len({self._provider_identity(name) for name in self.providers}) != len(self.providers):
            raise ValueError(f"{prefix}PROVIDERS names a provider twice: {','.join(self.providers)}")
        return self

    def _is_known_provider(self, name: str) -> bool:
        provider, separator, region = name.partition(":")
        if not separator:
            return provider in self.known_providers
        return provider in self.regional_providers and AWS_REGION_PATTERN.fullmatch(region) is not None

    def _provider_identity(self, name: str) -> tuple[str, str]:
        provider = name.partition(":")[0]
        return (provider, self.provider_region(name) if provider in self.regional_providers else "")

    def provider_region(self, name: str) -> str:
        """The AWS region of one of ``providers``: "<provider>:<region>"'s, else AWS_REGION."""
        _, separator, region = name.partition(":")
        return region if separator else self.aws_region

    @property
    def breaker_policy(self) -> BreakerPolicy:
        return BreakerPolicy(
            failure_threshold=self.breaker_failure_threshold,
            error_rate=self.breaker_error_rate,
            window_seconds=self.breaker_window_seconds,
            minimum_calls=self.breaker_minimum_calls,
            cooldown_seconds=self.breaker_cooldown_seconds,
        )

    @model_validator(mode="after")
    def _check_timing(self) -> SenderSettings:
        if self.heartbeat_seconds * 2 > self.visibility_timeout_seconds:
            raise ValueError(
                f"heartbeat_seconds ({self.heartbeat_seconds:g}) must be at most half of "
                f"visibility_timeout_seconds ({self.visibility_timeout_seconds}), or a message can "
                "reappear on the queue while it is still being sent"
            )
        if not self.queue_name:
            self.queue_name = channel_spec(self.channel).queue
        if not self.dead_letter_queue_name:
            self.dead_letter_queue_name = channel_spec(self.channel).dead_letter_queue
        if not self.bulk_queue_name:
            self.bulk_queue_name = channel_spec(self.channel).bulk_queue
        if not self.bulk_dead_letter_queue_name:
            self.bulk_dead_letter_queue_name = channel_spec(self.channel).bulk_dead_letter_queue
        return self

    def bulk_lane(self) -> SenderSettings:
        """These settings for the consumer of the bulk queue: its queues and its slots."""
        return self.model_copy(
            update={
                "concurrency": self.bulk_concurrency,
                "receivers": 0,
                "queue_name": self.bulk_queue_name,
                "dead_letter_queue_name": self.bulk_dead_letter_queue_name,
            }
        )

    @property
    def receiver_count(self) -> int:
        return self.receivers or -(-self.concurrency // 10)

    @property
    def claim_lease_seconds(self) -> float:
        """How long a claim on a delivery holds without a heartbeat: a crashed replica's claim
        expires after this, so a redelivered copy can be sent by someone else."""
        return float(self.visibility_timeout_seconds)
