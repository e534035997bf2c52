"""gateway/outbox/sns_batch.py and SnsPublisher against both emulators: what the hand-built
PublishBatch sends arrives in a subscribed queue exactly as given, SNS's refusals (of an entry, of
a call) are reported as botocore reported them, and a connection lost before the answer is tried
once more. Each emulator is a real server process; the lost answer is a real reset, through
harness/fault_proxy.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import ClientError

from gateway.outbox.publisher import Publication, SnsPublisher
from gateway.outbox.sns_batch import BatchEntry, SnsBatchClient
from harness.aws import EMULATORS, aws_client
from harness.fault_proxy import FaultProxy
from shared.aws import aws_clients
from shared.messages import NotificationMessage, RecipientSnapshot
from shared.settings import ServiceSettings
from stack.emulator import Emulator
from stack.network import free_port

# Starting LocalStack takes about ten seconds, more on a busy machine; the first start may install it.
pytestmark = pytest.mark.timeout(480)

AWKWARD = 'a+b&c=d;e%41f#g h\nü€😀 /?:@[]!$\'()*,"{}'
ATTRIBUTES = {
    "channels": {"DataType": "String.Array", "StringValue": '["sms","email"]'},
    "lane": {"DataType": "String", "StringValue": "standard"},
}


@pytest.fixture(scope="module", params=["moto", "localstack"])
def emulator(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    server = EMULATORS[request.param](free_port(), log_path=tmp_path_factory.mktemp(request.param) / f"{request.param}.log")
    server.start()
    yield server
    server.stop()


class Topic:
    """A fresh topic with a queue subscribed to it (raw delivery: the queue gets the bare message)."""

    def __init__(self, emulator: Emulator) -> None:
        self.sns, self.sqs = aws_client("sns", emulator.endpoint_url), aws_client("sqs", emulator.endpoint_url)
        name = f"t-{uuid.uuid4().hex[:12]}"
        self.arn = self.sns.create_topic(Name=name)["TopicArn"]
        self.queue_url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.sns.subscribe(TopicArn=self.arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})

    def received(self, count: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        for _ in range(10):
            if len(messages) >= count:
                break
            answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"])
            messages += answer.get("Messages", [])
        return messages


async def batch_client(endpoint_url: str) -> AsyncIterator[SnsBatchClient]:
    async with aws_clients(ServiceSettings(aws_endpoint_url=endpoint_url), "sns") as sns, SnsBatchClient.for_client(sns) as client:
        yield client


@pytest.fixture
async def sns(emulator: Emulator) -> AsyncIterator[SnsBatchClient]:
    async for client in batch_client(emulator.endpoint_url):
        yield client


def attributes_of(message: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {name: {"DataType": value["DataType"], "StringValue": value["StringValue"]} for name, value in message["MessageAttributes"].items()}


class TestPublishBatch:
    async def test_each_message_arrives_as_given_with_its_attributes(self, emulator: Emulator, sns: SnsBatchClient) -> None:
        topic = Topic(emulator)
        entries = [BatchEntry(json.dumps({"text": AWKWARD, "index": index}), ATTRIBUTES) for index in range(10)]
        assert await sns.publish_batch(topic.arn, entries) == {}
        received = topic.received(10)
        assert sorted(json.loads(message["Body"])["index"] for message in received) == list(range(10))
        assert all(json.loads(message["Body"])["text"] == AWKWARD and attributes_of(message) == ATTRIBUTES for message in received)

    async def test_a_missing_topic_is_botocores_client_error(self, emulator: Emulator, sns: SnsBatchClient) -> None:
        topic = Topic(emulator)
        with pytest.raises(ClientError) as raised:
            await sns.publish_batch(topic.arn + "-gone", [BatchEntry("hello", ATTRIBUTES)])
        assert raised.value.response["Error"]["Code"] == "NotFound"

    async def test_a_message_over_256_kib_is_refused_and_reported(self, emulator: Emulator, sns: SnsBatchClient) -> None:
        topic = Topic(emulator)
        entries = [BatchEntry("first", {}), BatchEntry("x" * 262_145, {}), BatchEntry("third", {})]
        if emulator.name == "moto":
            # moto refuses the entry, as SNS refuses one it cannot take; the others are published.
            failed = await sns.publish_batch(topic.arn, entries)
            assert list(failed) == [1] and failed[1].startswith("InvalidParameter: ") and "Message too long" in failed[1]
            assert sorted(message["Body"] for message in topic.received(2)) == ["first", "third"]
        else:
            # LocalStack refuses the call, as SNS does when a call's messages together are too long.
            with pytest.raises(ClientError) as raised:
                await sns.publish_batch(topic.arn, entries)
            assert raised.value.response["Error"]["Code"] == "BatchRequestTooLong"


class TestConnections:
    async def test_an_answer_lost_to_a_reset_is_asked_for_again(self, emulator: Emulator) -> None:
        topic = Topic(emulator)
        proxy = FaultProxy(upstream_host=emulator.host, upstream_port=emulator.port).start()
        try:
            async for sns in batch_client(f"http://127.0.0.1:{proxy.port}"):
                proxy.drop_next_answer(after_request_bytes=100)
                assert await sns.publish_batch(topic.arn, [BatchEntry("once more", {})]) == {}
                assert proxy.answers_dropped == 1
        finally:
            proxy.stop()
        # SNS took the first request too: twice, which the senders' claims make harmless.
        assert [message["Body"] for message in topic.received(2)] == ["once more", "once more"]

    async def test_sns_out_of_reach_raises_after_a_second_try(self, emulator: Emulator) -> None:
        proxy = FaultProxy(upstream_host=emulator.host, upstream_port=emulator.port).start()
        proxy.cut()
        try:
            async for sns in batch_client(f"http://127.0.0.1:{proxy.port}"):
                with pytest.raises(aiohttp.ClientConnectionError):
                    await sns.publish_batch("arn:aws:sns:us-east-1:000000000000:any", [BatchEntry("lost?", {})])
        finally:
            proxy.stop()


class TestSnsPublisher:
    async def test_large_messages_go_in_calls_sns_accepts(self, emulator: Emulator, sns: SnsBatchClient) -> None:
        # Five of 100 kB: ten in one call would be over SNS's 256 KiB a call (LocalStack enforces it).
        topic = Topic(emulator)
        publications = [
            Publication(
                index,
                NotificationMessage(
                    notification_id=uuid.uuid4(),
                    recipient=RecipientSnapshot(name="ada", email="ada@example.com"),
                    message=f"{index} " + "x" * 100_000,
                    channels=["email"],
                    client="c",
                    created_at=datetime.now(UTC),
                ),
            )
            for index in range(5)
        ]
        assert await SnsPublisher(sns, topic.arn).publish(publications) == {}
        received = topic.received(5)
        assert sorted(NotificationMessage.from_json(message["Body"]).message.split()[0] for message in received) == ["0", "1", "2", "3", "4"]
