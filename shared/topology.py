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

Receipts take a second path: SES publishes the events of every email sent with the
configuration set ``EMAIL_CONFIGURATION_SET`` to the SNS topic ``email_events``, which delivers
them (not raw: the SNS envelope's ``Message`` is the SES event JSON) to the SQS queue
``email_events``, with its own dead-letter queue; the email sender consumes it
(``sender_email/receipts_consumer.py``).

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
EMAIL_EVENTS_TOPIC_NAME = "email_events"
EMAIL_EVENTS_QUEUE = "email_events"
EMAIL_EVENTS_DEAD_LETTER_QUEUE = "email_events_dlq"
EMAIL_CONFIGURATION_SET = "notifications"
EMAIL_EVENT_DESTINATION = "email_events"
# What SES publishes to email_events: the events that are receipts (sender_email/receipts.py).
EMAIL_EVENT_TYPES = ("delivery", "bounce", "complaint", "reject", "renderingFailure")
# An event for a message id no delivery has yet is left on the queue with backoff for a few
# minutes (shared/receipts.py): more receives than a notification queue's, so the redrive
# policy does not move it to the DLQ before the consumer drops it.
EMAIL_EVENTS_MAX_RECEIVE_COUNT = 10
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


def queue_attributes(dead_letter_queue_arn: str, *, max_receive_count: int = MAX_RECEIVE_COUNT) -> dict[str, str]:
    return {
        "VisibilityTimeout": str(VISIBILITY_TIMEOUT_SECONDS),
        "MessageRetentionPeriod": str(MESSAGE_RETENTION_SECONDS),
        "ReceiveMessageWaitTimeSeconds": "20",
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dead_letter_queue_arn, "maxReceiveCount": str(max_receive_count)}
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
        queue_arn = await _create_queues(
            sqs, created, channel_queues.queue, channel_queues.dead_letter_queue, topic=created["topic_arn"]
        )
        await _subscribe(sns, created["topic_arn"], queue_arn, channel_queues)
    events_topic = (await sns.create_topic(Name=EMAIL_EVENTS_TOPIC_NAME))["TopicArn"]
    created["email_events_topic_arn"] = events_topic
    events_queue_arn = await _create_queues(
        sqs,
        created,
        EMAIL_EVENTS_QUEUE,
        EMAIL_EVENTS_DEAD_LETTER_QUEUE,
        # Every SES region's email_events topic of the account (create_regional_email_events_topic).
        topic=in_any_region(events_topic),
        max_receive_count=EMAIL_EVENTS_MAX_RECEIVE_COUNT,
    )
    await _subscribe_email_events_queue(sns, events_topic, events_queue_arn)
    return created


async def create_regional_email_events_topic(sns: Any, sqs: Any) -> str:
    """In a second SES region (``sns`` is that region's, ``sqs`` the primary's, after
    :func:`create_topology`): its ``email_events`` topic, where that region's configuration set
    publishes, delivering to the primary region's ``email_events`` queue (SNS delivers to an SQS
    queue of another region; the queue's policy admits the ``email_events`` topic of any region).
    Idempotent; returns the topic's ARN."""
    events_topic = (await sns.create_topic(Name=EMAIL_EVENTS_TOPIC_NAME))["TopicArn"]
    queue_url = (await sqs.get_queue_url(QueueName=EMAIL_EVENTS_QUEUE))["QueueUrl"]
    await _subscribe_email_events_queue(sns, events_topic, await _queue_arn(sqs, queue_url))
    return events_topic


async def _subscribe_email_events_queue(sns: Any, events_topic: str, events_queue_arn: str) -> None:
    # Not raw: the consumer reads the SES event from the envelope's Message.
    subscription = await sns.subscribe(TopicArn=events_topic, Protocol="sqs", Endpoint=events_queue_arn, ReturnSubscriptionArn=True)
    await sns.set_subscription_attributes(
        SubscriptionArn=subscription["SubscriptionArn"], AttributeName="RawMessageDelivery", AttributeValue="false"
    )


async def _create_queues(
    sqs: Any, created: dict[str, str], queue: str, dead_letter_queue: str, *, topic: str, max_receive_count: int = MAX_RECEIVE_COUNT
) -> str:
    """Create (or confirm) a queue, its DLQ and the policy letting ``topic`` send to it; its ARN."""
    dlq_url = (
        await sqs.create_queue(QueueName=dead_letter_queue, Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)})
    )["QueueUrl"]
    dlq_arn = await _queue_arn(sqs, dlq_url)
    queue_url = (await sqs.create_queue(QueueName=queue))["QueueUrl"]
    # Set attributes separately: CreateQueue fails on an existing queue whose attributes differ.
    await sqs.set_queue_attributes(QueueUrl=queue_url, Attributes=queue_attributes(dlq_arn, max_receive_count=max_receive_count))
    queue_arn = await _queue_arn(sqs, queue_url)
    await sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(_allow_topic_policy(queue_arn, topic))})
    created[queue] = queue_url
    created[dead_letter_queue] = dlq_url
    return queue_arn


def email_event_destination(events_topic_arn: str) -> dict[str, Any]:
    """The configuration set's event destination: the receipts, to the ``email_events`` topic."""
    return {
        "Name": EMAIL_EVENT_DESTINATION,
        "Enabled": True,
        "MatchingEventTypes": list(EMAIL_EVENT_TYPES),
        "SNSDestination": {"TopicARN": events_topic_arn},
    }


async def create_email_event_destination(ses: Any, sns: Any) -> None:
    """Create (or confirm) the SES configuration set whose event destination is ``email_events``
    (the topic of ``ses``'s and ``sns``'s region: SES publishes only to one of its own). Idempotent."""
    events_topic = (await sns.create_topic(Name=EMAIL_EVENTS_TOPIC_NAME))["TopicArn"]
    sets = (await ses.list_configuration_sets()).get("ConfigurationSets", [])
    if EMAIL_CONFIGURATION_SET not in {entry["Name"] for entry in sets}:
        await ses.create_configuration_set(ConfigurationSet={"Name": EMAIL_CONFIGURATION_SET})
    try:
        await ses.create_configuration_set_event_destination(
            ConfigurationSetName=EMAIL_CONFIGURATION_SET, EventDestination=email_event_destination(events_topic)
        )
    except Exception as exc:  # noqa: BLE001 - only "it exists already" is expected here
        if "AlreadyExists" not in type(exc).__name__ and "AlreadyExists" not in str(exc):
            raise


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
    problems.extend(await _verify_email_events(sns, sqs, arns))
    return problems


async def _verify_email_events(sns: Any, sqs: Any, topic_arns: list[str]) -> list[str]:
    matching = [arn for arn in topic_arns if arn.rsplit(":", 1)[-1] == EMAIL_EVENTS_TOPIC_NAME]
    if not matching:
        return [f"topic {EMAIL_EVENTS_TOPIC_NAME!r} is missing"]
    try:
        dlq_url = (await sqs.get_queue_url(QueueName=EMAIL_EVENTS_DEAD_LETTER_QUEUE))["QueueUrl"]
        queue_url = (await sqs.get_queue_url(QueueName=EMAIL_EVENTS_QUEUE))["QueueUrl"]
    except Exception:  # noqa: BLE001 - any failure here means "not there" to an operator
        return [f"queue {EMAIL_EVENTS_QUEUE!r} or {EMAIL_EVENTS_DEAD_LETTER_QUEUE!r} is missing"]
    attributes = (await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"]))["Attributes"]
    redrive = json.loads(attributes.get("RedrivePolicy") or "{}")
    problems = []
    if redrive.get("deadLetterTargetArn") != await _queue_arn(sqs, dlq_url) or int(redrive.get("maxReceiveCount", 0)) != EMAIL_EVENTS_MAX_RECEIVE_COUNT:
        problems.append(f"{EMAIL_EVENTS_QUEUE}: RedrivePolicy is {attributes.get('RedrivePolicy')}")
    subscriptions = (await sns.list_subscriptions_by_topic(TopicArn=matching[0])).get("Subscriptions", [])
    if attributes.get("QueueArn") not in {s["Endpoint"] for s in subscriptions}:
        problems.append(f"{EMAIL_EVENTS_QUEUE} is not subscribed to {EMAIL_EVENTS_TOPIC_NAME!r}")
    return problems


async def _queue_arn(sqs: Any, queue_url: str) -> str:
    attributes = await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


def in_any_region(arn: str) -> str:
    """``arn`` with its region a wildcard (arn:aws:sns:*:123456789012:email_events), for ArnLike."""
    parts = arn.split(":")
    parts[3] = "*"
    return ":".join(parts)


def _allow_topic_policy(queue_arn: str, topic_arn_value: str) -> dict[str, Any]:
    # ArnLike for an ARN with wildcards (in_any_region's).
    condition = "ArnLike" if "*" in topic_arn_value else "ArnEquals"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowNotificationsTopic",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {condition: {"aws:SourceArn": topic_arn_value}},
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
