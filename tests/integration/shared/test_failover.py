"""Failover between a channel's providers, with real SMS sender processes, moto (SNS) behind an
HTTP fault proxy, and WireMock playing Twilio.

The proxy answers SNS SMS publishes with 5xx without forwarding them (the primary is down); its
failure rate goes back to 0 when the primary recovers. Every test's notifications have texts of
their own, so moto's sent SMS and WireMock's journal tell them apart.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from harness.database import make_notification
from harness.http_fault_proxy import HttpFaultProxy
from harness.senders import SenderProcess
from harness.system import System
from harness.twilio import Twilio, twilio_error, twilio_server_error
from harness.waiting import wait_until
from shared.topology import Channel

pytestmark = pytest.mark.timeout(300)
THRESHOLD = 3
COOLDOWN_SECONDS = 4


@pytest.fixture
def sns_proxy(stack: System) -> Iterator[HttpFaultProxy]:
    """SNS behind a proxy that fails every SMS publish until told otherwise."""
    proxy = HttpFaultProxy(
        upstream=stack.emulator.endpoint_url, rule="aws", failure_rate=1.0, log_path=stack.log_dir / f"sns-proxy-{uuid.uuid4().hex[:6]}.log"
    ).start()
    yield proxy
    proxy.stop()


def start_sms_sender(stack: System, *, providers: str, aws_endpoint_url: str | None = None, **overrides: str) -> SenderProcess:
    stack.senders.only()
    return stack.senders.start(
        Channel.SMS,
        PROVIDERS=providers,
        TWILIO_BASE_URL=stack.wiremock.base_url,
        BREAKER_FAILURE_THRESHOLD=str(THRESHOLD),
        BREAKER_COOLDOWN_SECONDS=str(COOLDOWN_SECONDS),
        CONCURRENCY="4",
        **({"AWS_ENDPOINT_URL": aws_endpoint_url} if aws_endpoint_url else {}),
        **overrides,
    )


def notifications(count: int, tag: str) -> list:
    return [make_notification(channels=(Channel.SMS,), phone_number=f"+1415555{index:04d}", text=f"{tag} {index} {uuid.uuid4()}") for index in range(count)]


class TestPrimaryDown:
    def test_the_secondary_takes_over_then_traffic_returns_after_the_cooldown(self, stack: System, sns_proxy: HttpFaultProxy) -> None:
        twilio = Twilio(stack.wiremock)
        sender = start_sms_sender(stack, providers="sns,twilio", aws_endpoint_url=sns_proxy.url)
        during = notifications(12, "outage")
        stack.accept(*during)
        stack.db.wait_for_all([n.notification_id for n in during], Channel.SMS, "sent", timeout=90)
        for notification in during:
            row = stack.db.delivery(notification.notification_id, Channel.SMS)
            assert row["provider"] == "twilio"
            assert len(twilio.messages(body=notification.message)) == 1, "sent once"
            assert stack.aws.sent_sms(notification.message) == []
        # Concurrency 4: at most that many calls were under way when the threshold was reached.
        assert sns_proxy.stats()["failed"] <= THRESHOLD + 4
        # Open, or half-open with its probes failing: not closed while SNS fails.
        assert sender.metric("sender_provider_breaker_state", channel="sms", provider="sns", sender_provider_breaker_state="closed") == 0
        assert sender.metric("sender_provider_sends_total", channel="sms", provider="sns", outcome="transient") >= THRESHOLD

        sns_proxy.set_failure_rate(0.0)
        time.sleep(COOLDOWN_SECONDS + 1)
        # Half-open: one call goes to SNS as the probe (concurrent ones would go to Twilio meanwhile).
        [probe] = notifications(1, "probe")
        stack.accept(probe)
        assert stack.db.wait_for_status(probe.notification_id, Channel.SMS, "sent", timeout=60)["provider"] == "sns"
        after = notifications(8, "recovered")
        stack.accept(*after)
        stack.db.wait_for_all([n.notification_id for n in after], Channel.SMS, "sent", timeout=60)
        providers = [stack.db.delivery(n.notification_id, Channel.SMS)["provider"] for n in after]
        assert providers == ["sns"] * len(after)
        for notification in after:
            assert len(stack.aws.sent_sms(notification.message)) == 1 and twilio.messages(body=notification.message) == []
        assert sender.metric("sender_provider_breaker_state", channel="sms", provider="sns", sender_provider_breaker_state="closed") == 1


class TestClassification:
    def test_an_authentication_failure_at_the_primary_fails_over_at_once_and_opens_its_breaker(self, stack: System) -> None:
        sender = start_sms_sender(stack, providers="twilio,sns", TWILIO_ACCOUNT_SID="AC" + "ff" * 16)
        Twilio(stack.wiremock).answer_every_message(twilio_error(20003))
        notification = notifications(1, "auth")[0]
        stack.accept(notification)
        row = stack.db.wait_for_status(notification.notification_id, Channel.SMS, "sent", timeout=60)
        assert (row["provider"], row["attempts"]) == ("sns", 1)
        assert len(stack.aws.sent_sms(notification.message)) == 1
        assert sender.metric("sender_provider_breaker_state", channel="sms", provider="twilio", sender_provider_breaker_state="open") == 1
        assert any(line.get("level") == "error" and line.get("provider") == "twilio" for line in sender.log_lines())

    def test_an_invalid_number_does_not_fail_over(self, stack: System) -> None:
        twilio = Twilio(stack.wiremock)
        start_sms_sender(stack, providers="sns,twilio")
        bad = make_notification(channels=(Channel.SMS,), phone_number="+0123", text=f"invalid {uuid.uuid4()}")
        stack.accept(bad)
        row = stack.db.wait_for_status(bad.notification_id, Channel.SMS, "failed", timeout=60)
        assert (row["provider"], row["attempts"]) == ("sns", 1)
        assert row["last_error"].startswith("InvalidParameter")
        assert twilio.messages(to="+0123") == []


class TestAllProvidersDown:
    def test_receiving_pauses_nothing_reaches_the_dlq_and_everything_is_delivered_after(
        self, stack: System, sns_proxy: HttpFaultProxy
    ) -> None:
        twilio = Twilio(stack.wiremock)
        outage = twilio.answer_every_message(twilio_server_error(503))
        start_sms_sender(stack, providers="sns,twilio", aws_endpoint_url=sns_proxy.url)
        held = notifications(10, "all-down")
        stack.accept(*held)
        # An outage of 25 s: without the pause, 10 messages at back-off 1-2 s would use up their
        # five receives in about 10 s.
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline:
            assert stack.aws.dead_letters(Channel.SMS) == []
            time.sleep(2)
        statuses = {stack.db.delivery(n.notification_id, Channel.SMS)["status"] for n in held}
        assert statuses <= {"pending", "sending"}
        sns_proxy.set_failure_rate(0.0)
        stack.wiremock.remove_mapping(outage)
        stack.db.wait_for_all([n.notification_id for n in held], Channel.SMS, "sent", timeout=120)
        for notification in held:
            # The proxy forwarded no SMS publish during the outage; Twilio's 503s took nothing.
            taken_by_twilio = [m for m in twilio.messages(body=notification.message) if m["status"] == 201]
            assert len(stack.aws.sent_sms(notification.message)) + len(taken_by_twilio) == 1, "sent once"
        assert stack.aws.dead_letters(Channel.SMS) == []
