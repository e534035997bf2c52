"""Email through SES in a second region (EMAIL_SENDER_PROVIDERS=ses,ses:eu-west-1), with a real
email sender process and moto, which keeps SES, SNS and SQS per region as AWS does.

The module's system is prepared for eu-west-1 too (``email_regions``), as ``make up`` and compose's
init prepare it from EMAIL_SENDER_PROVIDERS. The primary region cannot send once the From identity
is deleted there: SES answers MessageRejected "Email address not verified", an account failure,
so the same attempt goes to eu-west-1.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from harness.aws import REGION, aws_client
from harness.database import make_notification
from harness.postgres import PostgresServer
from harness.gateway import Certificates
from harness.ses_events import ses_delivery
from harness.system import System, started_system
from shared.topology import EMAIL_CONFIGURATION_SET, EMAIL_EVENTS_QUEUE, EMAIL_EVENTS_TOPIC_NAME, Channel
from stack.prepare import DEFAULT_EMAIL_FROM_ADDRESS

pytestmark = pytest.mark.timeout(300)
SECOND_REGION = "eu-west-1"


@pytest.fixture(scope="module")
def sender_stack(postgres_server: PostgresServer, certificates: Certificates, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """This module's system, prepared for SES in SECOND_REGION as well."""
    with started_system(
        postgres=postgres_server,
        certificates=certificates,
        log_dir=tmp_path_factory.mktemp("second-region-logs"),
        gateway=False,
        email_regions=(SECOND_REGION,),
    ) as started:
        yield started


@pytest.fixture
def primary_cannot_send(stack: System) -> Iterator[None]:
    """The From identity deleted in the primary region (verified again afterwards)."""
    ses = aws_client("ses", stack.emulator.endpoint_url)
    ses.delete_identity(Identity=DEFAULT_EMAIL_FROM_ADDRESS)
    yield
    ses.verify_email_identity(EmailAddress=DEFAULT_EMAIL_FROM_ADDRESS)


def sent_in(stack: System, region: str) -> float:
    """How many emails SES of ``region`` has sent (moto counts per region; its sent-mail list does not say where)."""
    return aws_client("ses", stack.emulator.endpoint_url, region=region).get_send_quota()["SentLast24Hours"]


class TestPrepare:
    def test_each_region_gets_the_identity_the_configuration_set_and_a_topic_delivering_to_the_primary_queue(self, stack: System) -> None:
        endpoint = stack.emulator.endpoint_url
        primary_queue_arn = aws_client("sqs", endpoint).get_queue_attributes(
            QueueUrl=stack.aws.queue_url(EMAIL_EVENTS_QUEUE), AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        for region in (REGION, SECOND_REGION):
            ses = aws_client("ses", endpoint, region=region)
            assert DEFAULT_EMAIL_FROM_ADDRESS in ses.list_identities(IdentityType="EmailAddress")["Identities"], region
            assert EMAIL_CONFIGURATION_SET in {entry["Name"] for entry in ses.list_configuration_sets()["ConfigurationSets"]}, region
            sns = aws_client("sns", endpoint, region=region)
            [topic] = [t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(f":{EMAIL_EVENTS_TOPIC_NAME}")]
            assert f":{region}:" in topic
            subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
            assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("sqs", primary_queue_arn)], region
            attributes = sns.get_subscription_attributes(SubscriptionArn=subscriptions[0]["SubscriptionArn"])["Attributes"]
            assert attributes["RawMessageDelivery"] == "false"
        # Only the primary region has queues.
        assert aws_client("sqs", endpoint, region=SECOND_REGION).list_queues().get("QueueUrls", []) == []


class TestFailoverToTheSecondRegion:
    def test_the_email_goes_out_through_the_second_region_and_its_receipt_comes_back(self, stack: System, primary_cannot_send: None) -> None:
        stack.senders.only()
        sender = stack.senders.start(Channel.EMAIL, PROVIDERS=f"ses,ses:{SECOND_REGION}", CONCURRENCY="2")
        before = {region: sent_in(stack, region) for region in (REGION, SECOND_REGION)}
        notification = make_notification(channels=(Channel.EMAIL,), text=f"second region {uuid.uuid4()}")
        stack.accept(notification)

        row = stack.db.wait_for_status(notification.notification_id, Channel.EMAIL, "sent", timeout=60)
        # Failed over within the attempt: the primary never took it.
        assert (row["provider"], row["attempts"]) == (f"ses:{SECOND_REGION}", 1)
        [email] = stack.aws.sent_emails(notification.message)
        assert email["id"] == row["provider_message_id"]
        assert {region: sent_in(stack, region) - before[region] for region in before} == {REGION: 0, SECOND_REGION: 1}
        assert sender.metric("sender_provider_breaker_state", channel="email", provider="ses", sender_provider_breaker_state="open") == 1
        assert sender.metric("sender_provider_sends_total", channel="email", provider="ses", outcome="account") == 1
        assert sender.metric("sender_provider_sends_total", channel="email", provider=f"ses:{SECOND_REGION}", outcome="sent") == 1
        assert any(line.get("level") == "error" and line.get("provider") == "ses" for line in sender.log_lines())

        # SES in eu-west-1 publishes the receipt to eu-west-1's email_events topic (moto's SES
        # publishes no events itself: the test does, as SES would); it reaches the primary
        # region's queue, which this sender consumes.
        sns = aws_client("sns", stack.emulator.endpoint_url, region=SECOND_REGION)
        events_topic = sns.create_topic(Name=EMAIL_EVENTS_TOPIC_NAME)["TopicArn"]
        sns.publish(TopicArn=events_topic, Message=json.dumps(ses_delivery(row["provider_message_id"], "ada@example.com")))
        delivered = stack.db.wait_for_status(notification.notification_id, Channel.EMAIL, "delivered", timeout=60)
        assert delivered["provider"] == f"ses:{SECOND_REGION}"
