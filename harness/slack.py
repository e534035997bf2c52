"""The Slack Web API as WireMock plays it: what was posted, and answers scripted per channel."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from stack.wiremock_server import WireMock

SLACK_POST_PATH = "/api/chat.postMessage"


class Slack:
    def __init__(self, wiremock: WireMock) -> None:
        self.wiremock = wiremock

    def posts(self, *, channel: str | None = None, text: str | None = None) -> list[dict[str, Any]]:
        """chat.postMessage requests received (JSON bodies), oldest first, optionally filtered."""
        found = []
        for request in self.wiremock.requests():
            body = request["body"]
            if request["path"] != SLACK_POST_PATH or not isinstance(body, dict):
                continue
            if (channel is None or body.get("channel") == channel) and (text is None or body.get("text") == text):
                found.append({**body, "logged_at": request["logged_at"], "timestamp": journal_time(request)})
        return found

    def respond(self, channel: str, responses: list[dict[str, Any]]) -> None:
        """Answer the next posts to ``channel`` with ``responses`` in turn (WireMock responses),
        then as usual (the file mapping)."""
        scenario = f"{channel}-{uuid.uuid4().hex[:8]}"
        for index, response in enumerate(responses):
            self.wiremock.add_mapping(
                {
                    "priority": 1,
                    "scenarioName": scenario,
                    "requiredScenarioState": "Started" if index == 0 else f"step-{index}",
                    "newScenarioState": f"step-{index + 1}",
                    "request": {
                        "method": "POST",
                        "urlPath": SLACK_POST_PATH,
                        "bodyPatterns": [{"matchesJsonPath": {"expression": "$.channel", "equalTo": channel}}],
                    },
                    "response": response,
                }
            )

    def always(self, channel_pattern: str, response: dict[str, Any]) -> None:
        """Answer every post to channels matching the regex with ``response``."""
        self.wiremock.add_mapping(
            {
                "priority": 2,
                "request": {
                    "method": "POST",
                    "urlPath": SLACK_POST_PATH,
                    "bodyPatterns": [{"matchesJsonPath": {"expression": "$.channel", "matches": channel_pattern}}],
                },
                "response": response,
            }
        )

    def answer_every_post(self, response: dict[str, Any]) -> None:
        """Answer every chat.postMessage with ``response``, ahead of the stack's file mapping."""
        self.wiremock.add_mapping({"priority": 1, "request": {"method": "POST", "urlPath": SLACK_POST_PATH}, "response": response})


def slack_ok(*, delay_ms: int = 0) -> dict[str, Any]:
    """A successful chat.postMessage answer, like the stack's file mapping, optionally slow."""
    response: dict[str, Any] = {
        "status": 200,
        "headers": {"Content-Type": "application/json; charset=utf-8"},
        "body": '{"ok": true, "channel": {{toJson (jsonPath request.body \'$.channel\')}}, '
        '"ts": "{{now format=\'unix\'}}.{{randomValue length=6 type=\'NUMERIC\'}}"}',
        "transformers": ["response-template"],
    }
    if delay_ms:
        response["fixedDelayMilliseconds"] = delay_ms
    return response


def slack_error(status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "status": status,
        "headers": {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
    }
    if body is not None:
        response["jsonBody"] = body
    return response


def journal_time(request: dict[str, Any]) -> float | None:
    logged = request.get("logged_at")
    if not logged:
        return None
    return datetime.fromisoformat(logged.replace("Z", "+00:00")).timestamp()
