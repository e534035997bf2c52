"""The senders end to end, with real components only.

Real Postgres (a fresh database), the real moto server (SNS, SQS, SES), real WireMock standing
in for Slack, and the senders as real processes (``python -m sender_slack`` ...). Notifications
are created the way the gateway creates them: notification and ``pending`` delivery rows in one
transaction, then the message published to the ``notifications`` topic with its ``channels``
attribute. Outcomes are checked where they land: moto's sent SMS and emails, WireMock's request
journal, the ``deliveries`` rows, the queues and the senders' /metrics.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid

import pytest

from harness.database import make_notification
from harness.slack import slack_error, slack_ok
from harness.system import System as SenderStack
from harness.waiting import wait_until
from shared.database import Database
from shared.deliveries import DeliveryRepository
from shared.settings import postgres_dsn
from shared.statuses import DeliveryStatus
from shared.topology import Channel, queues_for

pytestmark = pytest.mark.timeout(240)


class TestSms:
    def test_one_and_two_recipients(self, stack: SenderStack) -> None:
        stack.senders.only(Channel.SMS)
        ada = make_notification(channels=(Channel.SMS,), name="ada", phone_number="+14155550101")
        stack.accept(ada)
        row = stack.db.wait_for_status(ada.notification_id, Channel.SMS, "sent")
        [sms] = stack.aws.sent_sms(ada.message)
        assert sms["phone_number"] == "+14155550101"
        assert (row["attempts"], row["provider_message_id"], row["last_error"]) == (1, sms["id"], None)
        assert row["sent_at"] is not None and row["claimed_by"] is None

        grace = make_notification(channels=(Channel.SMS,), name="grace", phone_number="+14155550102")
        alan = make_notification(channels=(Channel.SMS,), name="alan", phone_number="+442071838750")
        stack.accept(grace, alan)
        for message, number in ((grace, "+14155550102"), (alan, "+442071838750")):
            stack.db.wait_for_status(message.notification_id, Channel.SMS, "sent")
            assert [(s["phone_number"], s["message"]) for s in stack.aws.sent_sms(message.message)] == [
                (number, message.message)
            ]

    def test_invalid_number_fails_permanently(self, stack: SenderStack) -> None:
        stack.senders.only(Channel.SMS)
        bad = make_notification(channels=(Channel.SMS,), phone_number="+0123")
        stack.accept(bad)
        row = stack.db.wait_for_status(bad.notification_id, Channel.SMS, "failed")
        assert row["attempts"] == 1
        assert row["last_error"].startswith("InvalidParameter")
        assert "E164" in row["last_error"]
        assert stack.aws.sent_sms(bad.message) == []
        wait_until(lambda: stack.aws.queue_depth(queues_for(Channel.SMS).queue) == 0, what="the queue to empty")
        dead = [m for m in stack.aws.dead_letters(Channel.SMS) if str(bad.notification_id) in m["Body"]]
        assert dead == [], "permanent failures are deleted, not dead-lettered"


class TestEmail:
    def test_one_and_two_recipients(self, stack: SenderStack) -> None:
        stack.senders.only(Channel.EMAIL)
        ada = make_notification(channels=(Channel.EMAIL,), name="ada", email="ada@example.com", subject="Invoice 42")
        stack.accept(ada)
        row = stack.db.wait_for_status(ada.notification_id, Channel.EMAIL, "sent")
        [sent] = stack.aws.sent_emails(ada.message)
        assert (sent["source"], sent["destination"], sent["subject"], sent["body"]) == (
            "sender@notifications.com",
            ["ada@example.com"],
            "Invoice 42",
            ada.message,
        )
        assert row["provider_message_id"] == sent["id"]

        grace = make_notification(channels=(Channel.EMAIL,), name="grace", email="grace@example.org", subject=None)
        alan = make_notification(channels=(Channel.EMAIL,), name="alan", email="alan@example.net", subject="Hi Alan")
        stack.accept(grace, alan)
        for message, address, subject in ((grace, "grace@example.org", "Notification"), (alan, "alan@example.net", "Hi Alan")):
            stack.db.wait_for_status(message.notification_id, Channel.EMAIL, "sent")
            assert [(e["source"], e["destination"], e["subject"], e["body"]) for e in stack.aws.sent_emails(message.message)] == [
                ("sender@notifications.com", [address], subject, message.message)
            ]


class TestSlack:
    def test_one_and_two_recipients(self, stack: SenderStack) -> None:
        stack.senders.only(Channel.SLACK)
        ada = make_notification(channels=(Channel.SLACK,), name="ada", slack_id="C0ADA")
        stack.accept(ada)
        row = stack.db.wait_for_status(ada.notification_id, Channel.SLACK, "sent")
        [post] = stack.slack.posts(text=ada.message)
        assert post["channel"] == "C0ADA"
        assert row["provider_message_id"]

        grace = make_notification(channels=(Channel.SLACK,), name="grace", slack_id="C0GRACE")
        alan = make_notification(channels=(Channel.SLACK,), name="alan", slack_id="U0ALAN")
        stack.accept(grace, alan)
        for message, slack_id in ((grace, "C0GRACE"), (alan, "U0ALAN")):
            stack.db.wait_for_status(message.notification_id, Channel.SLACK, "sent")
            assert [(p["channel"], p["text"]) for p in stack.slack.posts(text=message.message)] == [
                (slack_id, message.message)
            ]


class TestChannels:
    def test_one_recipient_on_all_three_channels(self, stack: SenderStack) -> None:
        stack.senders.only(Channel.SMS, Channel.EMAIL, Channel.SLACK)
        everywhere = make_notification(
            channels=(Channel.SMS, Channel.EMAIL, Channel.SLACK),
            phone_number="+14155550199",
            email="everywhere@example.com",
            slack_id="C0ALL",
            subject="All channels",
        )
        stack.accept(everywhere)
        for channel in Channel:
            stack.db.wait_for_status(everywhere.notification_id, channel, "sent")
        assert [s["phone_number"] for s in stack.aws.sent_sms(everywhere.message)] == ["+14155550199"]
        assert [(e["destination"], e["subject"]) for e in stack.aws.sent_emails(everywhere.message)] == [
            (["everywhere@example.com"], "All channels")
        ]
        assert [p["channel"] for p in stack.slack.posts(text=everywhere.message)] == ["C0ALL"]

    def test_only_the_addressed_channels_get_a_message(self, stack: SenderStack) -> None:
        senders = stack.senders.only(Channel.SMS, Channel.EMAIL, Channel.SLACK)
        email_and_slack = make_notification(channels=(Channel.EMAIL, Channel.SLACK), phone_number="+14155550177")
        sms_only = make_notification(channels=(Channel.SMS,), phone_number="+14155550178")
        stack.accept(email_and_slack, sms_only)
        stack.db.wait_for_status(email_and_slack.notification_id, Channel.EMAIL, "sent")
        stack.db.wait_for_status(email_and_slack.notification_id, Channel.SLACK, "sent")
        stack.db.wait_for_status(sms_only.notification_id, Channel.SMS, "sent")
        assert set(stack.db.deliveries(email_and_slack.notification_id)) == {"email", "slack"}
        # Both were published before either was sent; what reached a queue has been handled.
        for channel in Channel:
            wait_until(lambda c=channel: stack.aws.queue_depth(queues_for(c).queue) == 0, what=f"{channel} queue empty")
        assert stack.aws.sent_sms(email_and_slack.message) == []
        assert stack.aws.sent_emails(sms_only.message) == [] and stack.slack.posts(text=sms_only.message) == []
        assert len(stack.aws.sent_emails(email_and_slack.message)) == 1
        assert len(stack.slack.posts(text=email_and_slack.message)) == 1
        assert len(stack.aws.sent_sms(sms_only.message)) == 1
        for sender in senders.values():
            assert sender.metric("sender_messages_failed_total", channel=sender.channel.value, reason="wrong_channel") == 0


class TestSlackFailures:
    def test_rate_limited_then_sent_once_after_the_retry_after(self, stack: SenderStack) -> None:
        stack.senders.only(Channel.SLACK)
        stack.slack.respond(
            "C0RATE", [slack_error(429, {"ok": False, "error": "ratelimited"}, headers={"Retry-After": "3"})]
        )
        message = make_notification(channels=(Channel.SLACK,), slack_id="C0RATE")
        stack.accept(message)
        row = stack.db.wait_for_status(message.notification_id, Channel.SLACK, "sent")
        posts = stack.slack.posts(channel="C0RATE")
        assert [p["text"] for p in posts] == [message.message, message.message], "one 429, then one success"
        assert posts[1]["timestamp"] - posts[0]["timestamp"] >= 2.9, "not retried before Retry-After"
        assert (row["attempts"], row["last_error"]) == (2, None)

    def test_two_server_errors_then_sent_once(self, stack: SenderStack) -> None:
        sender = stack.senders.only(Channel.SLACK)[Channel.SLACK]
        retried = sender.metric("sender_messages_retried_total", channel="slack")
        stack.slack.respond("C0FLAKY", [slack_error(500, {"ok": False, "error": "internal_error"}), slack_error(503)])
        message = make_notification(channels=(Channel.SLACK,), slack_id="C0FLAKY")
        stack.accept(message)
        row = stack.db.wait_for_status(message.notification_id, Channel.SLACK, "sent")
        assert len(stack.slack.posts(channel="C0FLAKY")) == 3
        assert row["attempts"] == 3
        assert sender.metric("sender_messages_retried_total", channel="slack") - retried == 2

    def test_permanent_error_is_recorded_and_not_retried(self, stack: SenderStack) -> None:
        sender = stack.senders.only(Channel.SLACK)[Channel.SLACK]
        stack.slack.always("C0GONE", slack_error(200, {"ok": False, "error": "channel_not_found"}))
        message = make_notification(channels=(Channel.SLACK,), slack_id="C0GONE")
        stack.accept(message)
        row = stack.db.wait_for_status(message.notification_id, Channel.SLACK, "failed")
        assert (row["attempts"], row["last_error"]) == (1, "Slack error: channel_not_found")
        wait_until(lambda: stack.aws.queue_depth(queues_for(Channel.SLACK).queue) == 0, what="the queue to empty")
        time.sleep(3)  # longer than any back-off of the test settings: a retry would show now
        assert len(stack.slack.posts(channel="C0GONE")) == 1
        assert stack.db.delivery(message.notification_id, Channel.SLACK)["attempts"] == 1
        assert not [m for m in stack.aws.dead_letters(Channel.SLACK) if str(message.notification_id) in m["Body"]]
        assert sender.metric("sender_messages_failed_total", channel="slack", reason="channel_not_found") == 1

    def test_always_failing_ends_in_the_dlq_after_five_receives(self, stack: SenderStack) -> None:
        # A sender of its own (stopped after the test): the five 500s open Slack's circuit
        # breaker, which would hold up the next test's sends for its cool-down.
        stack.senders.only()
        stack.senders.start(Channel.SLACK, BREAKER_COOLDOWN_SECONDS="30")
        stack.slack.always("C0BROKEN", slack_error(500, {"ok": False, "error": "internal_error"}))
        message = make_notification(channels=(Channel.SLACK,), slack_id="C0BROKEN")
        stack.accept(message)

        def dead_lettered() -> list[dict]:
            return [m for m in stack.aws.dead_letters(Channel.SLACK) if str(message.notification_id) in m["Body"]]

        [dead] = wait_until(dead_lettered, timeout=60, interval=1, what="the message in the DLQ")
        assert json.loads(dead["Body"])["notification_id"] == str(message.notification_id)
        assert json.loads(dead["MessageAttributes"]["channels"]["StringValue"]) == ["slack"]
        row = stack.db.delivery(message.notification_id, Channel.SLACK)
        assert row["status"] == "failed"
        assert row["last_error"] == "gave up after 5 attempts: Slack answered HTTP 500"
        # attempts counts claims, not receives. SQS is at-least-once: a message can be received
        # twice at once (stock moto's unlocked ReceiveMessage does it now and then under several
        # receivers; see stack/patched_moto.py), and the copy that finds the delivery
        # claimed is left alone, using a receive without an attempt. Every claim is one call.
        assert 3 <= row["attempts"] <= 5
        assert len(stack.slack.posts(channel="C0BROKEN")) == row["attempts"]
        assert stack.aws.queue_depth(queues_for(Channel.SLACK).queue) == 0


class TestNoDoubleSends:
    def test_redelivered_copy_of_a_sent_message_is_not_sent_again(self, stack: SenderStack) -> None:
        sender = stack.senders.only(Channel.SLACK)[Channel.SLACK]
        skipped = sender.metric("sender_duplicates_skipped_total", channel="slack")
        message = make_notification(channels=(Channel.SLACK,), slack_id="C0TWICE")
        stack.accept(message)
        stack.db.wait_for_status(message.notification_id, Channel.SLACK, "sent")
        stack.aws.publish(message)  # the same message again, as an SNS/SQS redelivery would be
        wait_until(
            lambda: sender.metric("sender_duplicates_skipped_total", channel="slack") == skipped + 1,
            what="the copy to be skipped",
        )
        wait_until(lambda: stack.aws.queue_depth(queues_for(Channel.SLACK).queue) == 0, what="the copy deleted")
        assert len(stack.slack.posts(text=message.message)) == 1
        assert stack.db.delivery(message.notification_id, Channel.SLACK)["attempts"] == 1

    def test_two_replicas_on_one_queue_send_each_message_once(self, stack: SenderStack) -> None:
        stack.senders.only()
        stack.slack.always("C0LOAD.*", slack_ok(delay_ms=100))
        replicas = stack.senders.start_many(2, Channel.SLACK, CONCURRENCY="16")
        # 40 Slack channels, 5 messages each: within the per-channel burst, so the replicas
        # compete for messages as fast as they can.
        messages = [
            make_notification(channels=(Channel.SLACK,), slack_id=f"C0LOAD{index % 40:02d}") for index in range(200)
        ]
        stack.accept(*messages)
        stack.db.wait_for_all([m.notification_id for m in messages], Channel.SLACK, "sent", timeout=120)

        posts = [(p["channel"], p["text"]) for p in stack.slack.posts() if p["channel"].startswith("C0LOAD")]
        assert sorted(posts) == sorted((m.recipient.slack_id, m.message) for m in messages), "each exactly once"
        sent_by = [replica.metric("sender_messages_sent_total", channel="slack") for replica in replicas]
        assert sum(sent_by) == 200
        assert all(count > 0 for count in sent_by), f"both replicas worked: {sent_by}"


class TestSharedRateLimit:
    def test_two_sms_replicas_share_one_bucket(self, stack: SenderStack) -> None:
        stack.senders.only()
        # RATE_LIMIT_SHARED is the SMS sender's default: both replicas draw from one bucket.
        stack.senders.start_many(2, Channel.SMS, RATE_LIMIT_PER_SECOND="5", RATE_LIMIT_BURST="5")
        messages = [make_notification(channels=(Channel.SMS,), phone_number=f"+1415555{index:04d}") for index in range(40)]
        stack.accept(*messages)
        ids = [m.notification_id for m in messages]
        stack.db.wait_for_all(ids, Channel.SMS, "sent", timeout=120)
        (row,) = stack.db.fetch(
            "SELECT extract(epoch FROM max(sent_at) - min(sent_at)) AS spread FROM deliveries WHERE notification_id = ANY($1::uuid[]) AND channel = 'sms'",
            ids,
        )
        # A burst of 5, then 5 a second for the other 35: 7 s. Two buckets of their own would take half that.
        assert row["spread"] >= 6.0, f"40 SMS in {row['spread']:.1f} s: more than 5/s together"
        # The module's email senders (shared by default too) keep a row of their own.
        assert "sms" in {r["key"] for r in stack.db.fetch("SELECT key FROM provider_rate_limit_buckets")}


class TestHeartbeat:
    def test_a_send_longer_than_the_visibility_timeout_is_not_picked_up_again(self, stack: SenderStack) -> None:
        stack.senders.only()
        stack.slack.always("C0SLOW", slack_ok(delay_ms=6000))
        settings = {"VISIBILITY_TIMEOUT_SECONDS": "3", "HEARTBEAT_SECONDS": "1", "SEND_TIMEOUT_SECONDS": "10"}
        replicas = stack.senders.start_many(2, Channel.SLACK, **settings)
        message = make_notification(channels=(Channel.SLACK,), slack_id="C0SLOW")
        stack.accept(message)
        row = stack.db.wait_for_status(message.notification_id, Channel.SLACK, "sent", timeout=30)
        assert row["attempts"] == 1
        assert len(stack.slack.posts(text=message.message)) == 1
        received = sum(replica.metric("sender_messages_received_total", channel="slack") for replica in replicas)
        assert received == 1, "the heartbeat kept the message invisible for the whole send"


class TestShutdown:
    def test_sigterm_lets_sends_in_progress_finish_and_loses_nothing(self, stack: SenderStack) -> None:
        stack.senders.only()
        stack.slack.always("C0TERM", slack_ok(delay_ms=2000))
        # Four tokens, then one every half second: four sends start at once, four more wait
        # for their turn (unstarted) in the remaining slots.
        sender = stack.senders.start(
            Channel.SLACK, CONCURRENCY="8", RATE_LIMIT_PER_SECOND="0.5", RATE_LIMIT_BURST="4"
        )
        messages = [make_notification(channels=(Channel.SLACK,), slack_id="C0TERM") for _ in range(30)]
        stack.accept(*messages)
        ids = [m.notification_id for m in messages]

        def sending() -> list[uuid.UUID]:
            rows = stack.db.fetch(
                "SELECT notification_id FROM deliveries WHERE notification_id = ANY($1) AND status = 'sending'", ids
            )
            return [row["notification_id"] for row in rows]

        in_progress = wait_until(sending, what="sends in progress")
        assert stack.senders.stop(sender) == 0, sender.process.log_tail()

        # Claimed before SIGTERM, still in WireMock's 2 s delay then: finished, not abandoned.
        for notification_id in in_progress:
            assert stack.db.delivery(notification_id, Channel.SLACK)["status"] == "sent"
        assert sending() == [], "nothing left claimed"
        events = [line.get("event") for line in sender.log_lines()]
        assert "handed unstarted messages back to the queue" in events
        assert "sender stopped" in events

        stack.senders.start(Channel.SLACK, RATE_LIMIT_PER_SECOND="50", RATE_LIMIT_BURST="50")
        stack.db.wait_for_all(ids, Channel.SLACK, "sent", timeout=60)
        texts = [p["text"] for p in stack.slack.posts(channel="C0TERM")]
        assert sorted(texts) == sorted(m.message for m in messages), "every message sent exactly once"


class TestReceiveAhead:
    def test_messages_received_ahead_wait_for_a_slot_and_are_handed_back_at_shutdown(self, stack: SenderStack) -> None:
        stack.senders.only()
        stack.slack.always("C0AHEAD", slack_ok(delay_ms=1500))
        # All on the queue before the sender starts (published one by one, which is slow on a busy
        # machine); then two sends at a time, 1.5 s each: the buffer stays full for about ten seconds.
        messages = [make_notification(channels=(Channel.SLACK,), slack_id="C0AHEAD") for _ in range(20)]
        stack.accept(*messages)
        sender = stack.senders.start(Channel.SLACK, CONCURRENCY="2", RECEIVE_AHEAD="4", RATE_LIMIT_PER_SECOND="50", RATE_LIMIT_BURST="50")

        seen: list[tuple[float, float]] = []

        def buffer_full() -> bool:
            metrics = sender.metrics()
            labels = (("channel", "slack"),)
            seen.append((metrics.get(("sender_messages_in_flight", labels), 0.0), metrics.get(("sender_messages_received_ahead", labels), 0.0)))
            return seen[-1] == (2, 4)

        try:
            wait_until(buffer_full, what="both slots busy and four messages received ahead")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; (in a slot, received ahead) last seen: {seen[-5:]}") from None
        assert stack.senders.stop(sender) == 0, sender.process.log_tail()
        handed_back = sum(
            line["messages"] for line in sender.log_lines() if line.get("event") == "handed unstarted messages back to the queue"
        )
        assert handed_back >= 4, "the buffered messages went back to the queue at once"

        stack.senders.start(Channel.SLACK, RATE_LIMIT_PER_SECOND="50", RATE_LIMIT_BURST="50")
        ids = [m.notification_id for m in messages]
        stack.db.wait_for_all(ids, Channel.SLACK, "sent", timeout=60)
        texts = [p["text"] for p in stack.slack.posts(channel="C0AHEAD")]
        assert sorted(texts) == sorted(m.message for m in messages), "every message sent exactly once"


class TestUnprocessableMessages:
    def test_unparseable_message_goes_to_the_dlq_and_the_sender_carries_on(self, stack: SenderStack) -> None:
        sender = stack.senders.only(Channel.SMS)[Channel.SMS]
        queue_url = stack.aws.queue_url(queues_for(Channel.SMS).queue)
        marker = uuid.uuid4().hex
        stack.aws.sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=f"this is not a notification {marker}",
            MessageAttributes={"channels": {"DataType": "String.Array", "StringValue": '["sms"]'}},
        )
        after = make_notification(channels=(Channel.SMS,))
        stack.accept(after)
        stack.db.wait_for_status(after.notification_id, Channel.SMS, "sent")

        def dead_lettered() -> list[dict]:
            return [m for m in stack.aws.dead_letters(Channel.SMS) if marker in m["Body"]]

        [dead] = wait_until(dead_lettered, what="the unparseable message in the DLQ")
        reason = dead["MessageAttributes"]["sender_error"]["StringValue"]
        assert reason.startswith("unparseable message: Invalid JSON")
        assert dead["MessageAttributes"]["channels"]["StringValue"] == '["sms"]'
        wait_until(lambda: stack.aws.queue_depth(queues_for(Channel.SMS).queue) == 0, what="the original deleted")
        logged = [line for line in sender.log_lines() if line.get("event") == "moving message to the dead-letter queue"]
        assert logged and logged[-1]["reason"] == reason and logged[-1]["level"] == "error"
        assert sender.process.running


class TestOpsPort:
    def test_health_readiness_and_metrics(self, stack: SenderStack) -> None:
        sender = stack.senders.only(Channel.EMAIL)[Channel.EMAIL]
        message = make_notification(channels=(Channel.EMAIL,))
        stack.accept(message)
        stack.db.wait_for_status(message.notification_id, Channel.EMAIL, "sent")

        with urllib.request.urlopen(f"{sender.ops_url}/healthz", timeout=5) as response:
            assert response.status == 200
        with urllib.request.urlopen(f"{sender.ops_url}/readyz", timeout=5) as response:
            # The email sender's process consumes its receipts' queue too, and its bulk lane's.
            checks = {"database": "ok", "queue": "ok", "bulk_queue": "ok", "queue email_events": "ok"}
            assert json.loads(response.read()) == {"status": "ready", "checks": checks}
        with urllib.request.urlopen(f"{sender.ops_url}/metrics", timeout=5) as response:
            text = response.read().decode()
        for name in (
            "sender_messages_received_total",
            "sender_messages_sent_total",
            "sender_messages_failed_total",
            "sender_messages_retried_total",
            "sender_messages_in_flight",
            "sender_messages_received_ahead",
            "sender_send_duration_seconds",
            "sender_duplicates_skipped_total",
        ):
            assert f"# TYPE {name.removesuffix('_total')}" in text, name
        assert sender.metric("sender_messages_sent_total", channel="email") >= 1
        assert sender.metric("sender_send_duration_seconds_count", channel="email") >= 1
        assert sender.metric("sender_messages_in_flight", channel="email") == 0


class TestDeliveryRepository:
    """The claim protocol against the real Postgres: what the no-double-send guarantee rests on."""

    async def test_of_many_concurrent_claims_exactly_one_wins(self, sender_stack: SenderStack) -> None:
        message = make_notification(channels=(Channel.SLACK,))
        sender_stack.db.insert_notifications([message])
        database = await Database(postgres_dsn(sender_stack.db.url), size=10).open()
        try:
            repository = DeliveryRepository(database)
            claims = await asyncio.gather(
                *(
                    repository.claim(
                        notification_id=message.notification_id,
                        channel=Channel.SLACK,
                        claimed_by=f"replica-{index}",
                        lease_seconds=30,
                    )
                    for index in range(10)
                )
            )
        finally:
            await database.close()
        winners = [claim for claim in claims if claim.claimed]
        assert len(winners) == 1
        losers = [claim for claim in claims if not claim.claimed]
        assert all(claim.status is DeliveryStatus.SENDING for claim in losers)
        assert all(claim.claimed_by == winners[0].claimed_by for claim in losers)
        assert all(25 < claim.claim_remaining_seconds <= 30 for claim in losers)
        row = sender_stack.db.delivery(message.notification_id, Channel.SLACK)
        assert (row["status"], row["attempts"], row["claimed_by"]) == ("sending", 1, winners[0].claimed_by)

    async def test_claims_expire_settle_only_for_their_holder_and_can_be_extended(
        self, sender_stack: SenderStack
    ) -> None:
        message = make_notification(channels=(Channel.SMS,))
        sender_stack.db.insert_notifications([message])
        key = {"notification_id": message.notification_id, "channel": Channel.SMS}
        database = await Database(postgres_dsn(sender_stack.db.url), size=10).open()
        try:
            repository = DeliveryRepository(database)
            assert (await repository.claim(**key, claimed_by="a", lease_seconds=30)).claimed
            assert await repository.extend_claims(
                notification_ids=[message.notification_id], channel=Channel.SMS, claimed_by="a", lease_seconds=60
            ) == 1
            assert await repository.extend_claims(
                notification_ids=[message.notification_id], channel=Channel.SMS, claimed_by="b", lease_seconds=60
            ) == 0
            assert not await repository.release(**key, claimed_by="b", reason="not mine")
            # a's replica dies: its lease runs out and b takes over.
            async with database.connection() as connection:
                await connection.execute(
                    "UPDATE deliveries SET claimed_until = now() - interval '1 second' WHERE notification_id = $1",
                    message.notification_id,
                )
            takeover = await repository.claim(**key, claimed_by="b", lease_seconds=30)
            assert takeover.claimed and takeover.attempts == 2
            assert not await repository.mark_failed(**key, claimed_by="a", reason="too late")
            assert await repository.release(**key, claimed_by="b", reason="HTTP 503")
            row = sender_stack.db.delivery(message.notification_id, Channel.SMS)
            assert (row["status"], row["last_error"], row["claimed_by"]) == ("pending", "HTTP 503", None)

            assert (await repository.claim(**key, claimed_by="c", lease_seconds=30)).claimed
            await repository.mark_sent(**key, provider_message_id="sns-1")
            again = await repository.claim(**key, claimed_by="d", lease_seconds=30)
            assert (again.claimed, again.status, again.attempts) == (False, DeliveryStatus.SENT, 3)
            missing = await repository.claim(
                notification_id=uuid.uuid4(), channel=Channel.SMS, claimed_by="d", lease_seconds=30
            )
            assert (missing.claimed, missing.status) == (False, None)
        finally:
            await database.close()
        row = sender_stack.db.delivery(message.notification_id, Channel.SMS)
        assert (row["status"], row["provider_message_id"], row["last_error"], row["claimed_until"]) == (
            "sent",
            "sns-1",
            None,
            None,
        )
        assert row["sent_at"] is not None
