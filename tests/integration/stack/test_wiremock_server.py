"""stack/wiremock_server.py: WireMock as the Slack Web API, its journal and scripted answers."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient

from stack.network import free_port
from stack.wiremock_server import WireMock


@pytest.fixture(scope="module")
def wiremock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireMock]:
    server = WireMock(free_port(), log_path=tmp_path_factory.mktemp("wiremock") / "wiremock.log").start()
    yield server
    server.stop()


class TestWireMock:
    def test_slack_sdk_posts_a_message_and_the_journal_shows_it(self, wiremock: WireMock) -> None:
        wiremock.reset_requests()
        client = WebClient(token="xoxb-local-test", base_url=wiremock.slack_api_url)

        response = client.chat_postMessage(channel="U0123456789", text='Deploy "42" is done\nall green')

        assert response["ok"] is True
        assert response["channel"] == "U0123456789"
        assert re.fullmatch(r"\d{10}\.\d{6}", response["ts"])
        assert response["message"]["text"] == 'Deploy "42" is done\nall green'
        headers = {name.lower(): value for name, value in response.headers.items()}
        assert headers["content-type"] in ("application/json; charset=utf-8", ["application/json; charset=utf-8"])
        (logged,) = wiremock.requests()
        assert (logged["method"], logged["path"]) == ("POST", "/api/chat.postMessage")
        assert logged["body"] == {"channel": "U0123456789", "text": 'Deploy "42" is done\nall green'}
        assert logged["headers"]["Authorization"] == "Bearer xoxb-local-test"

    def test_form_encoded_post_and_auth_test(self, wiremock: WireMock) -> None:
        client = WebClient(token="xoxb-local-test", base_url=wiremock.slack_api_url)
        assert client.auth_test()["ok"] is True

        answer = _post(f"{wiremock.slack_api_url}chat.postMessage", b"channel=C042&text=a%26b", form=True)

        assert (answer["ok"], answer["channel"], answer["message"]["text"]) == (True, "C042", "a&b")
        assert wiremock.requests()[-1]["body"] == {"channel": "C042", "text": "a&b"}

    def test_failures_then_success(self, wiremock: WireMock) -> None:
        url = f"{wiremock.slack_api_url}chat.postMessage"
        payload = json.dumps({"channel": "U0123456789", "text": "retry me"}).encode()
        mapping_ids = wiremock.add_failures_then_success(
            "/api/chat.postMessage", failures=2, status=429, headers={"Retry-After": "1"}
        )
        try:
            statuses = []
            for _ in range(3):
                try:
                    _post(url, payload)
                    statuses.append(200)
                except urllib.error.HTTPError as exc:
                    statuses.append(exc.code)
                    assert exc.headers["Retry-After"] == "1"
            assert statuses == [429, 429, 200]
        finally:
            for mapping_id in mapping_ids:
                wiremock.remove_mapping(mapping_id)
            wiremock.reset_mappings()

    def test_added_mapping_and_reset_back_to_the_files(self, wiremock: WireMock) -> None:
        wiremock.add_mapping(
            {
                "request": {"method": "POST", "urlPath": "/api/chat.postMessage"},
                "response": {"status": 200, "jsonBody": {"ok": False, "error": "ratelimited"}},
                "priority": 1,
            }
        )
        url = f"{wiremock.slack_api_url}chat.postMessage"
        payload = json.dumps({"channel": "U1", "text": "x"}).encode()
        assert _post(url, payload)["error"] == "ratelimited"

        wiremock.reset_mappings()

        assert _post(url, payload)["ok"] is True


def _post(url: str, body: bytes, *, form: bool = False) -> dict:
    content_type = "application/x-www-form-urlencoded" if form else "application/json; charset=utf-8"
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())
