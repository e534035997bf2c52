"""How a Slack message is sent: chat.postMessage of the message's Slack text to the recipient's Slack id.

One JSON POST on one aiohttp session (one connection pool), read as the Web API documents it:
``{"ok": true, "ts": ...}`` or ``{"ok": false, "error": ...}``, 429 with ``Retry-After``. No
slack_sdk client: for this one call it added about a third to the CPU of each send, and its
import about 3 MB to each sender's memory. Retries are the runtime's, with back-off and
``Retry-After``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import aiohttp

from shared.backoff import retry_after_seconds
from shared.http_provider import HttpProvider, json_object
from shared.messages import NotificationMessage
from shared.providers import PermanentSendError, SendError, SendResult, TransientSendError
from shared.channels import Channel

from sender_slack.settings import SlackSenderSettings

# ok:false errors worth retrying: Slack's own trouble. Every other error is about this request
# (channel_not_found, not_in_channel, is_archived, msg_too_long, invalid_auth ...) and fails
# the same way however often it is repeated.
TRANSIENT_SLACK_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org"}
)
DEFAULT_RETRY_AFTER_SECONDS = 1.0


class SlackProvider(HttpProvider):
    channel = Channel.SLACK

    def __init__(self, settings: SlackSenderSettings) -> None:
        super().__init__(settings)
        self._post_url = settings.slack_api_url.rstrip("/") + "/chat.postMessage"
        self._headers = {
            "Authorization": f"Bearer {settings.slack_bot_token.get_secret_value()}",
            "Content-Type": "application/json; charset=utf-8",
        }

    def rate_limit_key(self, message: NotificationMessage) -> str:
        # Slack limits posting per channel, so each Slack channel gets its own bucket.
        return message.recipient.slack_id or ""

    async def send(self, message: NotificationMessage) -> SendResult:
        slack_id = message.recipient.slack_id
        if not slack_id:
            raise PermanentSendError("recipient has no Slack id", code="no_slack_id")
        body = json.dumps({"channel": slack_id, "text": message.slack_content().text})
        try:
            async with self.session.post(self._post_url, data=body, headers=self._headers) as response:
                status, retry_after = response.status, response.headers.get("Retry-After")
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransientSendError(f"Slack unreachable: {type(exc).__name__}: {exc}", code="connection_error") from exc
        data = json_object(raw)
        if status == 200 and data is not None and data.get("ok") is True:
            return SendResult(provider_message_id=data.get("ts"))
        raise classify_slack_response(status=status, data=data, retry_after=retry_after)


def classify_slack_response(*, status: int, data: dict[str, Any] | None, retry_after: str | None) -> SendError:
    """429 and 5xx are transient; ok:false errors by their code (see TRANSIENT_SLACK_ERRORS)."""
    error = data.get("error") if data is not None else None
    if status == 429 or error == "ratelimited":
        seconds = parse_retry_after(retry_after)
        return TransientSendError(
            f"Slack rate limited the request (Retry-After: {seconds:g} s)", code="ratelimited", retry_after=seconds
        )
    if status >= 500:
        return TransientSendError(f"Slack answered HTTP {status}", code="server_error")
    if error in TRANSIENT_SLACK_ERRORS:
        return TransientSendError(f"Slack error: {error}", code=error)
    if isinstance(error, str) and error:
        return PermanentSendError(f"Slack error: {error}", code=error)
    # No Slack error code: not Slack's API answering (a proxy, a wrong URL). Keep the message.
    return TransientSendError(f"unexpected Slack response: HTTP {status}", code="unexpected_response")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float:
    """Seconds from Slack's Retry-After header (``shared/backoff.py`` reads it), a second when absent."""
    seconds = retry_after_seconds(value, now=now)
    return DEFAULT_RETRY_AFTER_SECONDS if seconds is None else seconds
