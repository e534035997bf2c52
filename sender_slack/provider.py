"""How a Slack message is sent: chat.postMessage to the recipient's Slack id.

All requests share one aiohttp session (one connection pool). slack_sdk's own retry handlers
are switched off: the runtime retries, with back-off and ``Retry-After``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from shared.messages import NotificationMessage
from shared.providers import PermanentSendError, Provider, SendError, SendResult, TransientSendError
from shared.topology import Channel

from sender_slack.settings import SlackSenderSettings

# ok:false errors worth retrying: Slack's own trouble. Every other error is about this request
# (channel_not_found, not_in_channel, is_archived, msg_too_long, invalid_auth ...) and fails
# the same way however often it is repeated.
TRANSIENT_SLACK_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org"}
)
DEFAULT_RETRY_AFTER_SECONDS = 1.0


class SlackProvider(Provider):
    channel = Channel.SLACK

    def __init__(self, settings: SlackSenderSettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._client: AsyncWebClient | None = None

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._settings.send_timeout_seconds),
            connector=aiohttp.TCPConnector(limit=self._settings.concurrency),
        )
        self._client = AsyncWebClient(
            token=self._settings.slack_bot_token.get_secret_value(),
            base_url=self._settings.slack_api_url,
            session=self._session,
            timeout=math.ceil(self._settings.send_timeout_seconds),
            retry_handlers=[],
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def rate_limit_key(self, message: NotificationMessage) -> str:
        # Slack limits posting per channel, so each Slack channel gets its own bucket.
        return message.recipient.slack_id or ""

    async def send(self, message: NotificationMessage) -> SendResult:
        assert self._client is not None, "open() first"
        slack_id = message.recipient.slack_id
        if not slack_id:
            raise PermanentSendError("recipient has no Slack id", code="no_slack_id")
        try:
            response = await self._client.chat_postMessage(channel=slack_id, text=message.message)
        except SlackApiError as exc:
            raise classify_slack_error(exc) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransientSendError(f"Slack unreachable: {type(exc).__name__}: {exc}", code="connection_error") from exc
        return SendResult(provider_message_id=response.get("ts"))


def classify_slack_error(exc: SlackApiError) -> SendError:
    """429 and 5xx are transient; ok:false errors by their code (see TRANSIENT_SLACK_ERRORS)."""
    response = exc.response
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    headers = getattr(response, "headers", None) or {}
    data = getattr(response, "data", None)
    error = data.get("error") if isinstance(data, dict) else None
    if status == 429 or error == "ratelimited":
        retry_after = parse_retry_after(_header(headers, "Retry-After"))
        return TransientSendError(
            f"Slack rate limited the request (Retry-After: {retry_after:g} s)", code="ratelimited", retry_after=retry_after
        )
    if isinstance(status, int) and status >= 500:
        return TransientSendError(f"Slack answered HTTP {status}", code="server_error")
    if error in TRANSIENT_SLACK_ERRORS:
        return TransientSendError(f"Slack error: {error}", code=error)
    if error:
        return PermanentSendError(f"Slack error: {error}", code=error)
    # No Slack error code: not Slack's API answering (a proxy, a wrong URL). Keep the message.
    return TransientSendError(f"unexpected Slack response: HTTP {status}", code="unexpected_response")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return DEFAULT_RETRY_AFTER_SECONDS
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER_SECONDS
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def _header(headers: Any, name: str) -> str | None:
    # aiohttp's headers are case-insensitive; a plain dict (tests, other clients) may not be.
    value = headers.get(name)
    if value is None and isinstance(headers, dict):
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return value
