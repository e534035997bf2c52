"""The SNS/SQS topology, defined once.

One SNS topic fans every accepted notification out to two SQS queues per channel, one per
*lane*: ``<channel>_notifications`` for one-offs (POST /notifications) and
``<channel>_bulk_notifications`` for bulk (batch items). Each subscription delivers raw messages
and filters on the ``channels`` and ``lane`` message attributes, so a queue only receives the
notifications addressed to its channel in its lane. Each queue has a dead-letter queue that
receives a message after ``MAX_RECEIVE_COUNT`` failed receives (the same redrive for both lanes).

Why two queues rather than one: SQS has no priorities, so 10,000 batch items published ahead of
a login code would be received ahead of it. With a queue per lane the channel's sender consumes
both at once, the bulk queue with a few slots of its own (``*_SENDER_BULK_CONCURRENCY``) beside
the one-offs' (``*_SENDER_CONCURRENCY``), and one provider rate limit for both: a one-off waits
for a free one-off slot and a token, never behind the bulk backlog.

Terraform (``terraform/modules/messaging/main.tf``) and docker compose provision the same definitions; a test
checks that they agree with this module.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# Channel: also imported from here by callers that know it from before shared/channels.py.
from shared.channels import CHANNELS, Channel, channel_spec

TOPIC_NAME = "notifications"
MAX_RECEIVE_COUNT = 5
# Longer than any sender's send timeout plus its heartbeat interval, so a message is never
# redelivered while a healthy sender is still working on it.
VISIBILITY_TIMEOUT_SECONDS = 60
MESSAGE_RETENTION_SECONDS = 4 * 24 * 3600
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
CHANNELS_ATTRIBUTE = "channels"
NOTIFICATION_ID_ATTRIBUTE = "notification_id"
LANE_ATTRIBUTE = "lane"


class Lane(StrEnum):
    """Which of a channel's two queues a message goes to (the ``lane`` message attribute)."""

    STANDARD = "standard"  # one-offs: POST /notifications
    BULK = "bulk"  # batch items


@dataclass(frozen=True)
class LaneQueues:
    """One lane of a channel: its queue and dead-letter queue."""

    channel: Channel
    lane: Lane
    queue: str
    dead_letter_queue: str


def queues_for(channel: Channel | str, lane: Lane = Lane.STANDARD) -> LaneQueues:
    """The channel's queue and dead-letter queue in ``lane`` (``shared/channels.py`` names them)."""
    spec = channel_spec(channel)
    if lane is Lane.BULK:
        return LaneQueues(spec.channel, lane, spec.bulk_queue, spec.bulk_dead_letter_queue)
    return LaneQueues(spec.channel, lane, spec.queue, spec.dead_letter_queue)


ALL_QUEUES: tuple[LaneQueues, ...] = tuple(queues_for(spec.channel, lane) for spec in CHANNELS for lane in Lane)


def filter_policy(channel: Channel | str, lane: Lane = Lane.STANDARD) -> dict[str, list[str]]:
    """The subscription's filter policy: the messages whose ``channels`` attribute names the
    channel and whose ``lane`` is the queue's."""
    return {CHANNELS_ATTRIBUTE: [Channel(channel).value], LANE_ATTRIBUTE: [Lane(lane).value]}


def queue_attributes(dead_letter_queue_arn: str) -> dict[str, str]:
    return {
        "VisibilityTimeout": str(VISIBILITY_TIMEOUT_SECONDS),
        "MessageRetentionPeriod": str(MESSAGE_RETENTION_SECONDS),
        "ReceiveMessageWaitTimeSeconds": "20",
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dead_letter_queue_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
        ),
    }


async def topic_arn(sns: Any) -> str:
    """The topic's ARN. CreateTopic is idempotent and the cheapest way to learn it."""
    response = await sns.create_topic(Name=TOPIC_NAME)
    return response["TopicArn"]


async def create_topology(sns: Any, sqs: Any) -> dict[str, str]:
    """Create (or confirm) the topic, the queues, their DLQs and the subscriptions. Idempotent.

    Returns the topic ARN and every queue URL by queue name.
    """
    created = {"topic_arn": await topic_arn(sns)}
    for channel_queues in ALL_QUEUES:
        dlq_url = (
            await sqs.create_queue(
                QueueName=channel_queues.dead_letter_queue,
                Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)},
            )
        )["QueueUrl"]
        dlq_arn = await _queue_arn(sqs, dlq_url)
        queue_url = (await sqs.create_queue(QueueName=channel_queues.queue))["QueueUrl"]
        # Set attributes separately: CreateQueue fails on an existing queue whose attributes differ.
        await sqs.set_queue_attributes(QueueUrl=queue_url, Attributes=queue_attributes(dlq_arn))
        queue_arn = await _queue_arn(sqs, queue_url)
        await sqs.set_queue_attributes(
            QueueUrl=queue_url, Attributes={"Policy": json.dumps(_allow_topic_policy(queue_arn, created["topic_arn"]))}
        )
        await _subscribe(sns, created["topic_arn"], queue_arn, channel_queues)
        created[channel_queues.queue] = queue_url
        created[channel_queues.dead_letter_queue] = dlq_url
    return created


async def verify_topology(sns: Any, sqs: Any) -> list[str]:
    """Differences between the live resources and the definitions above; empty when they agree."""
    problems: list[str] = []
    topics = await sns.list_topics()
    arns = [t["TopicArn"] for t in topics.get("Topics", [])]
    matching = [arn for arn in arns if arn.rsplit(":", 1)[-1] == TOPIC_NAME]
    if not matching:
        return [f"topic {TOPIC_NAME!r} is missing"]
    arn = matching[0]
    subscriptions = (await sns.list_subscriptions_by_topic(TopicArn=arn)).get("Subscriptions", [])
    by_endpoint = {s["Endpoint"]: s["SubscriptionArn"] for s in subscriptions}
    for channel_queues in ALL_QUEUES:
        try:
            dlq_url = (await sqs.get_queue_url(QueueName=channel_queues.dead_letter_queue))["QueueUrl"]
            queue_url = (await sqs.get_queue_url(QueueName=channel_queues.queue))["QueueUrl"]
        except Exception:  # noqa: BLE001 - any failure here means "not there" to an operator
            problems.append(f"queue {channel_queues.queue!r} or {channel_queues.dead_letter_queue!r} is missing")
            continue
        attributes = (await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"]))["Attributes"]
        expected = queue_attributes(await _queue_arn(sqs, dlq_url))
        for name, value in expected.items():
            live = attributes.get(name)
            if name == "RedrivePolicy" and live is not None:
                live_policy, expected_policy = json.loads(live), json.loads(value)
                if (
                    live_policy.get("deadLetterTargetArn") != expected_policy["deadLetterTargetArn"]
                    or int(live_policy.get("maxReceiveCount", 0)) != MAX_RECEIVE_COUNT
                ):
                    problems.append(f"{channel_queues.queue}: RedrivePolicy is {live}, expected {value}")
            elif live != value:
                problems.append(f"{channel_queues.queue}: {name} is {live!r}, expected {value!r}")
        subscription_arn = by_endpoint.get(attributes.get("QueueArn", ""))
        if subscription_arn is None:
            problems.append(f"{channel_queues.queue} is not subscribed to {TOPIC_NAME!r}")
            continue
        sub_attributes = (await sns.get_subscription_attributes(SubscriptionArn=subscription_arn))["Attributes"]
        if sub_attributes.get("RawMessageDelivery") != "true":
            problems.append(f"{channel_queues.queue}: subscription does not use raw message delivery")
        live_filter = json.loads(sub_attributes.get("FilterPolicy") or "null")
        expected_filter = filter_policy(channel_queues.channel, channel_queues.lane)
        if live_filter != expected_filter:
            problems.append(f"{channel_queues.queue}: filter policy is {live_filter}, expected {expected_filter}")
    return problems


async def _queue_arn(sqs: Any, queue_url: str) -> str:
    attributes = await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


def _allow_topic_policy(queue_arn: str, topic_arn_value: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowNotificationsTopic",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn_value}},
            }
        ],
    }


async def _subscribe(sns: Any, topic: str, queue_arn: str, channel_queues: LaneQueues) -> None:
    # Subscribe is idempotent for identical attributes; set them afterwards so an existing
    # subscription with an outdated filter policy is corrected rather than rejected.
    subscription = await sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, ReturnSubscriptionArn=True)
    arn = subscription["SubscriptionArn"]
    await sns.set_subscription_attributes(SubscriptionArn=arn, AttributeName="RawMessageDelivery", AttributeValue="true")
    await sns.set_subscription_attributes(
        SubscriptionArn=arn, AttributeName="FilterPolicy", AttributeValue=json.dumps(filter_policy(channel_queues.channel, channel_queues.lane))
    )


async def _main(argv: list[str]) -> int:
    from shared.aws import aws_clients
    from shared.settings import ServiceSettings

    command = argv[0] if argv else "create"
    settings = ServiceSettings()
    async with aws_clients(settings, "sns", "sqs") as (sns, sqs):
        if command == "create":
            created = await create_topology(sns, sqs)
            print(json.dumps(created, indent=2))
            return 0
        if command == "verify":
            problems = await verify_topology(sns, sqs)
            for problem in problems:
                print(problem)
            print("topology matches" if not problems else f"{len(problems)} difference(s)")
            return 1 if problems else 0
    print(f"usage: python -m shared.topology [create|verify], not {command!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(asyncio.run(_main(sys.argv[1:])))
