"""The fault proxy's rules, and its per-kind failure share, on an in-process upstream."""

from __future__ import annotations

from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from harness.http_fault_proxy import ProxyServer, aws_rule, rule_named, slack_rule, twilio_rule

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
TWILIO_PATH = "/2010-04-01/Accounts/AC123/Messages.json"


def sms_publish(text: str) -> bytes:
    return urlencode({"Action": "Publish", "PhoneNumber": "+14155550100", "Message": text}).encode()


def send_email(text: str) -> bytes:
    return urlencode({"Action": "SendEmail", "Message.Body.Text.Data": text}).encode()


def twilio_create(text: str) -> bytes:
    return urlencode({"To": "+14155550100", "From": "+15005550006", "Body": text}).encode()


class TestTwilioRule:
    def test_picks_a_create_message_call_as_an_sms_with_its_body(self) -> None:
        pick = twilio_rule("POST", TWILIO_PATH, FORM, twilio_create("hello"))
        assert pick is not None
        assert (pick.kind, pick.text, pick.failure.status) == ("sms", "hello", 500)
        assert b'"code": 20500' in pick.failure.body

    def test_leaves_other_calls_alone(self) -> None:
        assert twilio_rule("GET", TWILIO_PATH, FORM, b"") is None
        assert twilio_rule("POST", "/2010-04-01/Accounts/AC123/Calls.json", FORM, twilio_create("x")) is None


class TestCombinedRules:
    def test_picks_what_either_rule_picks(self) -> None:
        rule = rule_named("slack,twilio")
        assert rule("POST", TWILIO_PATH, FORM, twilio_create("sms text")).kind == "sms"  # type: ignore[union-attr]
        slack = rule("POST", "/api/chat.postMessage", {"Content-Type": "application/json"}, b'{"text": "slack text"}')
        assert slack is not None and (slack.kind, slack.text) == ("slack", "slack text")
        assert rule("POST", "/api/users.info", {}, b"{}") is None

    def test_one_name_is_that_rule(self) -> None:
        assert rule_named("slack") is slack_rule


async def test_a_kind_fails_at_its_own_share_while_the_others_keep_the_common_one() -> None:
    async def accept(request: web.Request) -> web.Response:
        return web.Response(text="<PublishResponse/>", content_type="text/xml")

    upstream_app = web.Application()
    upstream_app.router.add_post("/", accept)
    async with TestServer(upstream_app) as upstream:
        proxy = ProxyServer(upstream=str(upstream.make_url("/")), rule=aws_rule, failure_rate=0.0, seed=1)
        async with TestServer(proxy.app()) as served, aiohttp.ClientSession() as client:
            base = served.make_url("")

            async def statuses(body: bytes, count: int = 5) -> list[int]:
                found = []
                for _ in range(count):
                    async with client.post(base.with_path("/"), data=body, headers=FORM) as response:
                        found.append(response.status)
                return found

            async with client.put(base.with_path("/__fault_proxy/failure-rate"), json={"kind": "sms", "failure_rate": 1.0}) as response:
                assert (await response.json())["failure_rates"] == {"sms": 1.0}
            assert await statuses(sms_publish("down")) == [500] * 5
            assert await statuses(send_email("fine")) == [200] * 5
            async with client.put(base.with_path("/__fault_proxy/failure-rate"), json={"kind": "sms", "failure_rate": None}):
                pass
            assert await statuses(sms_publish("up")) == [200] * 5
            async with client.get(base.with_path("/__fault_proxy/stats")) as response:
                stats = await response.json()
            async with client.get(base.with_path("/__fault_proxy/sends")) as response:
                sends = await response.json()
    assert stats["failed_by_kind"] == {"sms": 5}
    assert [send["text"] for send in sends] == ["fine"] * 5 + ["up"] * 5
    assert all(send["started"] <= send["t"] for send in sends)
