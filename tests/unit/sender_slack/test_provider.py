"""SlackProvider against a local HTTP server speaking Slack's Web API: requests and classification.

The server is an in-process aiohttp app, so the provider's real parsing of statuses, headers and
bodies is what gets classified.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from aiohttp import web

from sender_slack.provider import SlackProvider, parse_retry_after
from sender_slack.settings import SlackSenderSettings
from shared.messages import ChannelContent, NotificationMessage, RecipientSnapshot, SlackContent
from shared.providers import PermanentSendError, TransientSendError
from shared.topology import Channel
from stack.network import free_port

Responder = Callable[[], web.Response]


class FakeSlack:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.respond: Responder = lambda: web.json_response({"ok": True, "channel": "C1", "ts": "1700000000.000100"})

    async def post_message(self, request: web.Request) -> web.Response:
        self.requests.append(
            {"headers": dict(request.headers), "body": json.loads(await request.text()), "path": request.path}
        )
        return self.respond()


@pytest.fixture
async def slack() -> AsyncIterator[tuple[FakeSlack, str]]:
    fake = FakeSlack()
    app = web.Application()
    app.router.add_post("/api/chat.postMessage", fake.post_message)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield fake, f"http://127.0.0.1:{port}/api/"
    await runner.cleanup()


@pytest.fixture
async def provider(slack: tuple[FakeSlack, str]) -> AsyncIterator[SlackProvider]:
    _fake, url = slack
    async with SlackProvider(
        SlackSenderSettings(slack_api_url=url, slack_bot_token="xoxb-test", send_timeout_seconds=2)
    ) as opened:
        yield opened  # type: ignore[misc]


def slack_message(slack_id: str | None = "C0123CHAN") -> NotificationMessage:
    return NotificationMessage(
        notification_id=uuid.uuid4(),
        recipient=RecipientSnapshot(name="ada", slack_id=slack_id, email="ada@example.com"),
        message="Deploy finished",
        channels=[Channel.SLACK],
        client="ci",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


class TestSend:
    async def test_posts_to_the_recipients_channel(self, slack: tuple[FakeSlack, str], provider: SlackProvider) -> None:
        fake, _url = slack
        result = await provider.send(slack_message())
        assert result.provider_message_id == "1700000000.000100"
        [request] = fake.requests
        assert request["body"] == {"channel": "C0123CHAN", "text": "Deploy finished"}
        assert request["headers"]["Authorization"] == "Bearer xoxb-test"

    async def test_a_templates_rendering_posts_its_slack_text(self, slack: tuple[FakeSlack, str], provider: SlackProvider) -> None:
        content = ChannelContent(slack=SlackContent(text="Deploy of &lt;api&gt; finished"))
        await provider.send(NotificationMessage(**{**slack_message().model_dump(exclude={"message"}), "content": content}))
        assert slack[0].requests[0]["body"] == {"channel": "C0123CHAN", "text": "Deploy of &lt;api&gt; finished"}

    async def test_one_session_for_all_requests(self, slack: tuple[FakeSlack, str], provider: SlackProvider) -> None:
        session = provider._session
        for _ in range(3):
            await provider.send(slack_message())
        assert provider._session is session and session is not None and not session.closed
        assert len(slack[0].requests) == 3

    async def test_recipient_without_slack_id_is_permanent(self, slack: tuple[FakeSlack, str], provider: SlackProvider) -> None:
        with pytest.raises(PermanentSendError, match="no Slack id"):
            await provider.send(slack_message(slack_id=None))
        assert slack[0].requests == []

    def test_rate_limit_key_is_the_slack_channel(self) -> None:
        provider = SlackProvider(SlackSenderSettings())
        assert provider.rate_limit_key(slack_message("C1")) == "C1"
        assert provider.rate_limit_key(slack_message("C2")) == "C2"


class TestErrorClassification:
    async def test_429_is_transient_with_its_retry_after(self, slack: tuple[FakeSlack, str], provider: SlackProvider) -> None:
        slack[0].respond = lambda: web.json_response(
            {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "3"}
        )
        with pytest.raises(TransientSendError) as caught:
            await provider.send(slack_message())
        assert caught.value.retry_after == 3
        assert caught.value.code == "ratelimited"
        assert len(slack[0].requests) == 1, "the runtime retries, not the provider"

    @pytest.mark.parametrize(
        "response",
        [
            lambda: web.Response(status=500, text="Internal Server Error"),
            lambda: web.Response(status=502, text="<html>Bad Gateway</html>", content_type="text/html"),
            lambda: web.json_response({"ok": False, "error": "service_unavailable"}, status=503),
        ],
    )
    async def test_5xx_is_transient(self, slack: tuple[FakeSlack, str], provider: SlackProvider, response: Responder) -> None:
        slack[0].respond = response
        with pytest.raises(TransientSendError):
            await provider.send(slack_message())

    @pytest.mark.parametrize(
        "error", ["channel_not_found", "invalid_auth", "not_in_channel", "is_archived", "msg_too_long", "no_text"]
    )
    async def test_request_errors_are_permanent(self, slack: tuple[FakeSlack, str], provider: SlackProvider, error: str) -> None:
        slack[0].respond = lambda: web.json_response({"ok": False, "error": error})
        with pytest.raises(PermanentSendError) as caught:
            await provider.send(slack_message())
        assert caught.value.reason == f"Slack error: {error}"
        assert caught.value.code == error

    @pytest.mark.parametrize("error", ["internal_error", "fatal_error", "service_unavailable", "request_timeout"])
    async def test_slack_side_errors_are_transient(self, slack: tuple[FakeSlack, str], provider: SlackProvider, error: str) -> None:
        slack[0].respond = lambda: web.json_response({"ok": False, "error": error})
        with pytest.raises(TransientSendError):
            await provider.send(slack_message())

    async def test_unreachable_slack_is_transient(self) -> None:
        url = f"http://127.0.0.1:{free_port()}/api/"
        async with SlackProvider(SlackSenderSettings(slack_api_url=url)) as provider:
            with pytest.raises(TransientSendError) as caught:
                await provider.send(slack_message())  # type: ignore[attr-defined]
        assert caught.value.code == "connection_error"

    async def test_not_slack_answering_is_transient(self, slack: tuple[FakeSlack, str], provider: SlackProvider) -> None:
        slack[0].respond = lambda: web.Response(status=404, text="no such route")
        with pytest.raises(TransientSendError):
            await provider.send(slack_message())


class TestParseRetryAfter:
    def test_seconds(self) -> None:
        assert parse_retry_after("30") == 30
        assert parse_retry_after("1.5") == 1.5

    def test_http_date(self) -> None:
        now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        assert parse_retry_after(format_datetime(now + timedelta(seconds=20), usegmt=True), now=now) == 20

    @pytest.mark.parametrize("value", [None, "", "soon"])
    def test_missing_or_garbage_means_a_second(self, value: str | None) -> None:
        assert parse_retry_after(value) == 1.0
