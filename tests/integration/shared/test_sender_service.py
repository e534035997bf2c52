"""shared/sender_service.py: one sender process consumes both lanes of its channel, the bulk
queue with slots of its own, so a one-off never waits behind a bulk backlog.

Real components only (the module's own system: Postgres, moto, WireMock, the Slack sender as a
process); messages are published as the gateway publishes them, with their ``lane`` attribute.
"""

from __future__ import annotations

import time

import pytest

from harness.database import make_notification
from harness.slack import slack_ok
from harness.system import System as SenderStack
from harness.waiting import wait_until
from shared.messages import NotificationMessage
from shared.topology import Channel, Lane, queues_for

pytestmark = pytest.mark.timeout(240)


class TestLanes:
    def test_a_one_off_overtakes_a_bulk_backlog_and_the_backlog_is_still_delivered(self, stack: SenderStack) -> None:
        stack.senders.only()
        # Every bulk send takes a second; two bulk slots: 40 messages take 20 s at least. Were they
        # on the one-offs' queue, its four slots would keep the one-off waiting 10 s.
        stack.slack.always("C0BULK.*", slack_ok(delay_ms=1000))
        stack.senders.start(Channel.SLACK, CONCURRENCY="4", BULK_CONCURRENCY="2")
        bulk = [
            make_notification(channels=(Channel.SLACK,), slack_id=f"C0BULK{index:02d}").model_copy(update={"lane": Lane.BULK})
            for index in range(40)
        ]
        stack.accept(*bulk)
        wait_until(lambda: _sent(stack, bulk) >= 2, what="bulk sends under way")

        one_off = make_notification(channels=(Channel.SLACK,), slack_id="C0ONEOFF")
        published = time.monotonic()
        stack.accept(one_off)
        stack.db.wait_for_status(one_off.notification_id, Channel.SLACK, "sent", timeout=30)
        waited = time.monotonic() - published
        backlog = len(bulk) - _sent(stack, bulk)
        assert waited < 5, f"the one-off waited {waited:.1f} s"
        assert backlog >= 20, f"the bulk backlog was nearly done ({backlog} left): the test proves nothing"

        stack.db.wait_for_all([message.notification_id for message in bulk], Channel.SLACK, "sent", timeout=120)
        wait_until(lambda: stack.aws.queue_depth(queues_for(Channel.SLACK, Lane.BULK).queue) == 0, what="the bulk queue to empty")
        posts = [post["text"] for post in stack.slack.posts() if post["channel"].startswith("C0BULK")]
        assert sorted(posts) == sorted(message.message for message in bulk), "each bulk message exactly once"


def _sent(stack: SenderStack, messages: list[NotificationMessage]) -> int:
    rows = stack.db.fetch(
        "SELECT count(*) AS n FROM deliveries WHERE notification_id = ANY($1) AND channel = 'slack' AND status = 'sent'",
        [message.notification_id for message in messages],
    )
    return rows[0]["n"]
