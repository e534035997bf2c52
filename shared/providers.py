"""The interface between the consumer runtime and a channel's provider (SNS SMS, SES, Slack).

A provider sends one notification and says how it went: it returns a ``SendResult`` or raises
``TransientSendError`` (worth retrying later: throttling, 5xx, timeouts, connection errors) or
``PermanentSendError`` (retrying cannot help: invalid number, rejected address, unknown Slack
channel) or ``ProviderAccountError`` (the provider refused our account or configuration:
authentication, suspended account; another provider may take the message at once, see
``shared/failover.py``). Everything else (retries, back-off, rate limits, status bookkeeping) is the runtime's
job (``shared/consumer.py``), so a provider stays a thin translation of one API call.
"""

from __future__ import annotations

import re
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectionError as BotoConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)

from shared.aws import aws_clients
from shared.channels import Channel
from shared.messages import NotificationMessage
from shared.sender_settings import SenderSettings


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str | None
    # Which of the channel's providers took it (set by shared/failover.py; "sns", "twilio").
    provider: str | None = None


class SendError(Exception):
    """A failed send. ``reason`` is for people (stored in ``deliveries.last_error``); ``code`` is
    a short, bounded identifier for metrics labels (``sender_messages_failed_total{reason}``)."""

    def __init__(self, reason: str, *, code: str = "error") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = _metric_code(code)
        # The provider that answered so (set by shared/failover.py), recorded on the delivery.
        self.provider: str | None = None


class TransientSendError(SendError):
    """Retry later; ``retry_after`` (seconds) when the provider said when."""

    def __init__(self, reason: str, *, code: str = "transient", retry_after: float | None = None) -> None:
        super().__init__(reason, code=code)
        self.retry_after = retry_after


class ProviderAccountError(TransientSendError):
    """The provider refused our account or configuration (authentication, suspended account,
    unverified sender): not this message's fault, so it is kept, and fails over to the next
    provider at once."""


class PermanentSendError(SendError):
    """Retrying cannot succeed; the delivery is recorded as failed with ``reason``."""

    def __init__(self, reason: str, *, code: str = "permanent") -> None:
        super().__init__(reason, code=code)


class Provider:
    """Base class of a channel's provider. Subclasses implement ``send`` and may override
    ``open``/``close`` (clients) and ``rate_limit_key`` (what the provider limits per key)."""

    channel: ClassVar[Channel]

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def send(self, message: NotificationMessage) -> SendResult:
        raise NotImplementedError

    def rate_limit_key(self, message: NotificationMessage) -> str:
        """The token bucket a send draws from; one bucket for the whole channel by default."""
        return self.channel.value

    async def __aenter__(self) -> Provider:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class AwsProvider(Provider):
    """A provider that is one AWS API (SNS for SMS, SES for email): its client is opened with the
    runtime's limits (``aws_provider_config``) and closed with the provider. ``region`` is the
    AWS region it calls, AWS_REGION's unless given ("ses:eu-west-1" is SES in eu-west-1)."""

    service: ClassVar[str]  # the AWS service name, as botocore knows it ("sns", "ses")

    def __init__(self, settings: SenderSettings, *, region: str | None = None) -> None:
        self._settings = settings if region is None else settings.model_copy(update={"aws_region": region})
        self._stack = AsyncExitStack()
        self.client: Any = None

    @property
    def region(self) -> str:
        return self._settings.aws_region

    async def open(self) -> None:
        config = aws_provider_config(
            send_timeout_seconds=self._settings.send_timeout_seconds, max_pool_connections=self._settings.concurrency
        )
        self.client = await self._stack.enter_async_context(aws_clients(self._settings, self.service, config=config))

    async def close(self) -> None:
        await self._stack.aclose()


# AWS error codes that condemn this one message (as opposed to throttling, outages or our own
# configuration: those are transient, so the message reaches the DLQ and can be replayed once
# the cause is fixed).
PERMANENT_AWS_ERROR_CODES = frozenset(
    {
        "InvalidParameter",
        "InvalidParameterValue",
        "InvalidParameterException",
        "ValidationError",
        "MessageRejected",
        "EndpointDisabled",
        "OptedOut",
    }
)


# AWS error codes that refuse our credentials or account, not the message: the next provider of
# the channel takes it at once (shared/failover.py) and this provider's breaker opens.
ACCOUNT_AWS_ERROR_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "AuthorizationError",
        "AccessDenied",
        "AccessDeniedException",
        "AccountSendingPausedException",
        "ExpiredToken",
    }
)


def aws_provider_config(*, send_timeout_seconds: float, max_pool_connections: int) -> Config:
    """botocore settings for a provider's client (SNS, SES): no botocore retries, since the
    runtime retries with back-off and a retried publish could send twice, and a read timeout
    no longer than the runtime's send timeout."""
    return Config(
        connect_timeout=min(3.0, send_timeout_seconds),
        read_timeout=send_timeout_seconds,
        # total_max_attempts, not max_attempts: the latter counts retries, so 1 still made two
        # calls, and the retry hid a failing provider from its breaker.
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=max_pool_connections,
    )


def classify_aws_error(exc: Exception) -> SendError:
    """Turn a botocore exception from SNS/SES into a transient or permanent send error."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "ClientError")
        message = str(error.get("Message") or exc)
        reason = f"{code}: {message}"
        if code in ACCOUNT_AWS_ERROR_CODES or _is_unverified_identity(code, message):
            return ProviderAccountError(reason, code=_snake(code))
        if code in PERMANENT_AWS_ERROR_CODES:
            return PermanentSendError(reason, code=_snake(code))
        return TransientSendError(reason, code=_snake(code))
    if isinstance(exc, (ReadTimeoutError, TimeoutError)):
        return TransientSendError(f"timeout: {exc}", code="timeout")
    if isinstance(exc, (BotoConnectionError, ConnectionClosedError, HTTPClientError, OSError)):
        return TransientSendError(f"connection error: {exc}", code="connection_error")
    if isinstance(exc, BotoCoreError):
        return TransientSendError(f"{type(exc).__name__}: {exc}", code="aws_error")
    return TransientSendError(f"{type(exc).__name__}: {exc}", code="unexpected")


def _is_unverified_identity(code: str, message: str) -> bool:
    """SES's MessageRejected for an identity this region has not verified ("Email address is not
    verified. The following identities failed the check in region ..."): our configuration in
    that region, not the message, so another region's SES may send it. (MessageRejected for the
    message itself, e.g. a virus, stays permanent.)"""
    return code == "MessageRejected" and "not verified" in message.lower()


def _snake(code: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", code).lower()


def _metric_code(code: str) -> str:
    # Label values stay short and tame whatever a provider sends back.
    return re.sub(r"[^a-z0-9_]", "_", code.lower())[:48] or "error"
