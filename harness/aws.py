"""The AWS emulators by name, and boto3 on them: publishing as the gateway does, reading queues and DLQs."""

from __future__ import annotations

import contextlib
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import boto3

from shared.channels import Channel
from shared.messages import NotificationMessage
from sender_sms.delivery_logs import delivery_log_groups as sms_delivery_log_groups
from shared.topology import (
    ALL_QUEUES,
    EMAIL_CONFIGURATION_SET,
    EMAIL_EVENT_DESTINATION,
    EMAIL_EVENTS_DEAD_LETTER_QUEUE,
    EMAIL_EVENTS_QUEUE,
    EMAIL_EVENTS_TOPIC_NAME,
    TOPIC_NAME,
    Lane,
    email_event_destination,
    queues_for,
)
from stack.emulator import EMULATOR_CREDENTIALS, Emulator
from stack.localstack import LocalStackServer
from stack.moto import MotoServer

REGION = "us-east-1"

# The emulators by the name tests and benchmarks (--emulator) use for them. moto-patched: moto
# with the fixes to its SQS that runs of thousands of messages need (stack/patched_moto.py).
EMULATORS: dict[str, Callable[..., Emulator]] = {
    "moto": MotoServer,
    "moto-patched": lambda port, **options: MotoServer(port, patched=True, **options),
    "localstack": LocalStackServer,
}


def aws_client(service: str, endpoint_url: str, *, region: str = REGION, **options: Any) -> Any:
    """A boto3 client on an emulator (its region, unless another is asked for, and test credentials)."""
    return boto3.client(service, endpoint_url=endpoint_url, region_name=region, **EMULATOR_CREDENTIALS, **options)


class Aws:
    """boto3 clients on an emulator, the gateway's way of publishing, and what landed where."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.sns = aws_client("sns", emulator.endpoint_url)
        self.sqs = aws_client("sqs", emulator.endpoint_url)
        self.topic_arn = self.sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
        self.email_events_topic_arn = self.sns.create_topic(Name=EMAIL_EVENTS_TOPIC_NAME)["TopicArn"]
        self.logs = aws_client("logs", emulator.endpoint_url)
        self.account = aws_client("sts", emulator.endpoint_url).get_caller_identity()["Account"]

    def queue_url(self, name: str) -> str:
        return self.sqs.get_queue_url(QueueName=name)["QueueUrl"]

    def publish(self, message: NotificationMessage) -> None:
        self.sns.publish(
            TopicArn=self.topic_arn, Message=message.to_json(), MessageAttributes=message.sns_message_attributes()
        )

    def publish_email_event(self, event: dict[str, Any]) -> None:
        """Publish an SES event to ``email_events`` as SES does (the event JSON as the SNS message)."""
        self.publish_email_events([event])

    def publish_email_events(self, events: list[dict[str, Any]]) -> None:
        for start in range(0, len(events), 10):
            batch = events[start : start + 10]
            self.sns.publish_batch(
                TopicArn=self.email_events_topic_arn,
                PublishBatchRequestEntries=[{"Id": str(i), "Message": json.dumps(event)} for i, event in enumerate(batch)],
            )

    @contextlib.contextmanager
    def scripted_email_events(self) -> Iterator[None]:
        """While in it, SES publishes no events of its own (LocalStack publishes a Delivery for
        every email sent with the configuration set): the test's events are the only ones."""
        if self.emulator.name == "moto":
            yield  # moto's SES publishes no events (nor implements deleting a destination)
            return
        ses = aws_client("ses", self.emulator.endpoint_url)
        ses.delete_configuration_set_event_destination(
            ConfigurationSetName=EMAIL_CONFIGURATION_SET, EventDestinationName=EMAIL_EVENT_DESTINATION
        )
        try:
            yield
        finally:
            ses.create_configuration_set_event_destination(
                ConfigurationSetName=EMAIL_CONFIGURATION_SET, EventDestination=email_event_destination(self.email_events_topic_arn)
            )

    def write_sms_delivery_log(self, record: dict[str, Any]) -> None:
        """Write an SNS SMS delivery status record where SNS writes it (its group by ``status``)."""
        self.write_sms_delivery_logs([record])

    def write_sms_delivery_logs(self, records: list[dict[str, Any]]) -> None:
        """Write SNS SMS delivery status records where SNS writes them (each to its group by ``status``)."""
        success, failure = sms_delivery_log_groups(REGION, self.account)
        stream = "receipts-test"
        for group in (success, failure):
            events = [
                {"timestamp": int(time.time() * 1000), "message": json.dumps(record)}
                for record in records
                if (group == success) == (record["status"] == "SUCCESS")
            ]
            if not events:
                continue
            with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
                self.logs.create_log_group(logGroupName=group)
            with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
                self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
            for start in range(0, len(events), 500):  # well under PutLogEvents' 1 MB and 10,000 events
                self.logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[start : start + 500])

    def drain_all(self) -> None:
        """Delete every visible message of every queue, both lanes' (PurgeQueue is allowed once a minute)."""
        names = [name for queues in ALL_QUEUES for name in (queues.queue, queues.dead_letter_queue)]
        for name in (*names, EMAIL_EVENTS_QUEUE, EMAIL_EVENTS_DEAD_LETTER_QUEUE):
            url = self.queue_url(name)
            while messages := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages"
            ):
                self.sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
                )

    def queue_depth(self, name: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url(name),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def dead_letters(self, channel: Channel, lane: Lane = Lane.STANDARD) -> list[dict[str, Any]]:
        """Everything in the channel's DLQ of ``lane`` (read and left there: visibility 0)."""
        url = self.queue_url(queues_for(channel, lane).dead_letter_queue)
        found: dict[str, dict[str, Any]] = {}
        for _ in range(5):
            messages = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=0,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            found.update((m["MessageId"], m) for m in messages)
        return list(found.values())

    def sent_sms(self, text: str | None = None) -> list[dict[str, Any]]:
        """The SMS the emulator sent (with this text)."""
        return [sms for sms in self.emulator.sent_sms() if text is None or sms["message"] == text]

    def sent_emails(self, text: str | None = None) -> list[dict[str, Any]]:
        """The emails the emulator sent (with this body)."""
        return [sent for sent in self.emulator.sent_emails() if text is None or sent["body"] == text]


class QueueReader:
    """Reads (and removes) what SNS delivered to the channel queues, indexed by notification id.

    For a gateway without senders: it takes the senders' place on the queues (both lanes').
    """

    def __init__(self, endpoint_url: str) -> None:
        self._sqs = aws_client("sqs", endpoint_url)
        self._urls = {q.queue: self._sqs.get_queue_url(QueueName=q.queue)["QueueUrl"] for q in ALL_QUEUES}
        self.seen: dict[str, list[tuple[str, dict[str, Any], dict[str, Any]]]] = defaultdict(list)

    def drain(self) -> None:
        for queue, url in self._urls.items():
            while True:
                messages = self._sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
                ).get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    body = json.loads(message["Body"])
                    self.seen[body["notification_id"]].append((queue, body, message.get("MessageAttributes", {})))
                self._sqs.delete_message_batch(
                    QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
                )

    def wait_for(self, notification_id: str, *, queues: int, timeout: float = 15.0) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """The deliveries of one notification, once it has reached ``queues`` queues."""
        deadline = time.monotonic() + timeout
        while True:
            self.drain()
            found = self.seen.get(notification_id, [])
            if len(found) >= queues or time.monotonic() > deadline:
                return found
            time.sleep(0.2)
