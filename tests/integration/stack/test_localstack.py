"""LocalStack as the tests and the Docker setup use it, checked against the real program.

The read-back tests run on both emulators, so the two are proven to answer the same way; the
rest is what only LocalStack needs: its installation, prepare_system and the system's SNS/SQS
features on it (String.Array filter policies, redrive and StartMessageMoveTask), and reset.
A LocalStack that cannot be installed or started fails these tests with the reason; they never skip.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.aws import EMULATORS, aws_client
from harness.postgres import PostgresServer
from shared.aws import aws_clients
from shared.settings import ServiceSettings
from shared.topology import (
    CHANNELS_ATTRIBUTE,
    EMAIL_CONFIGURATION_SET,
    EMAIL_EVENTS_QUEUE,
    EMAIL_EVENTS_TOPIC_NAME,
    LANE_ATTRIBUTE,
    TOPIC_NAME,
    Channel,
    Lane,
    create_topology,
    queues_for,
    verify_topology,
)
from stack.emulator import Emulator
from stack.localstack import LocalStackServer
from stack.localstack_install import LOCALSTACK_INSTALL_DIR, LOCALSTACK_VERSION, ensure_localstack, find_localstack_python
from stack.network import free_port
from stack.prepare import prepare_system
from stack.processes import ComponentError

# Starting LocalStack takes about ten seconds, more on a busy machine; the first start may install it.
pytestmark = pytest.mark.timeout(480)


def _start(kind: str, log_dir: Path) -> Emulator:
    emulator = EMULATORS[kind](free_port(), log_path=log_dir / f"{kind}.log")
    try:
        return emulator.start()
    except Exception as exc:  # noqa: BLE001 - whatever it is, it is the reason the test fails
        reason = f"{kind} could not be started here: {type(exc).__name__}: {exc}"
        raise pytest.fail.Exception(reason, pytrace=False) from None  # the reason once, not twice


@pytest.fixture(scope="module")
def localstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackServer]:
    server = _start("localstack", tmp_path_factory.mktemp("localstack"))
    assert isinstance(server, LocalStackServer)
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["moto", "localstack"])
def emulator(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    if request.param == "localstack":
        yield request.getfixturevalue("localstack")  # one LocalStack for the whole module
        return
    server = _start("moto", tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


def _client(service: str, emulator: Emulator) -> Any:
    return aws_client(service, emulator.endpoint_url)


class TestReadBack:
    """The same calls and the same assertions on moto and on LocalStack."""

    def test_both_satisfy_the_emulator_protocol(self, emulator: Emulator) -> None:
        assert isinstance(emulator, Emulator)
        assert emulator.running

    def test_sms_published_through_sns_is_read_back(self, emulator: Emulator) -> None:
        response = _client("sns", emulator).publish(PhoneNumber="+14155552671", Message="Your code is 1234")

        sms = [m for m in emulator.sent_sms() if m["message"] == "Your code is 1234"]
        assert sms == [{"id": response["MessageId"], "phone_number": "+14155552671", "message": "Your code is 1234"}]

    def test_email_sent_through_ses_v1_is_read_back(self, emulator: Emulator) -> None:
        ses = _client("ses", emulator)
        ses.verify_email_identity(EmailAddress="sender@notifications.com")
        response = ses.send_email(
            Source="sender@notifications.com",
            Destination={"ToAddresses": ["demo@example.com"], "CcAddresses": ["cc@example.com"]},
            Message={"Subject": {"Data": "Greetings"}, "Body": {"Text": {"Data": "Hello, demo"}}},
        )

        assert emulator.sent_emails()[-1] == {
            "id": response["MessageId"],
            "source": "sender@notifications.com",
            "destination": ["demo@example.com", "cc@example.com"],
            "subject": "Greetings",
            "body": "Hello, demo",
            "raw": None,
        }

    def test_raw_email_is_parsed(self, emulator: Emulator) -> None:
        ses = _client("ses", emulator)
        ses.verify_email_identity(EmailAddress="sender@notifications.com")
        raw = "From: sender@notifications.com\nTo: Demo <demo@example.com>\nSubject: Raw\n\nRaw body\n"
        response = ses.send_raw_email(
            Source="sender@notifications.com", Destinations=["demo@example.com"], RawMessage={"Data": raw}
        )

        sent = emulator.sent_emails()[-1]
        assert (sent["id"], sent["source"], sent["destination"]) == (
            response["MessageId"],
            "sender@notifications.com",
            ["demo@example.com"],
        )
        assert (sent["subject"], sent["body"].strip(), sent["raw"]) == ("Raw", "Raw body", raw)

    def test_an_unverified_sender_is_refused(self, emulator: Emulator) -> None:
        ses = _client("ses", emulator)
        with pytest.raises(ses.exceptions.MessageRejected):
            ses.send_email(
                Source="nobody@unverified.example",
                Destination={"ToAddresses": ["demo@example.com"]},
                Message={"Subject": {"Data": "x"}, "Body": {"Text": {"Data": "x"}}},
            )


class TestInstallation:
    def test_a_finished_install_is_recognised_at_once(self) -> None:
        started = time.monotonic()
        python = ensure_localstack()
        assert time.monotonic() - started < 2.0
        assert python == LOCALSTACK_INSTALL_DIR / LOCALSTACK_VERSION / "bin" / "python"

    def test_the_python_found_is_3_12_or_newer(self) -> None:
        python = find_localstack_python()
        code = "import sys; print(*sys.version_info[:2])"
        answer = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
        assert tuple(int(part) for part in answer.stdout.split()) >= (3, 12)

    def test_without_python_3_12_the_error_says_what_is_missing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("PATH", str(tmp_path))
        monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
        with pytest.raises(ComponentError, match=r"needs Python 3\.12 or newer .* none was found"):
            find_localstack_python()

    def test_a_taken_port_is_refused_before_starting(self, localstack: LocalStackServer, tmp_path: Path) -> None:
        second = LocalStackServer(localstack.port, log_path=tmp_path / "second.log")
        with pytest.raises(ComponentError, match="already in use"):
            second.start()
        assert not second.running


class TestTheSystemOnLocalStack:
    def test_prepare_system_creates_the_topology_and_a_usable_sender_identity(
        self, localstack: LocalStackServer, postgres_server: PostgresServer, tmp_path: Path
    ) -> None:
        database_url = postgres_server.create_database()
        try:
            topology = asyncio.run(
                prepare_system(
                    database_url=database_url, aws_endpoint_url=localstack.endpoint_url, certs_dir=tmp_path / "certs"
                )
            )
            again = asyncio.run(
                prepare_system(
                    database_url=database_url, aws_endpoint_url=localstack.endpoint_url, certs_dir=tmp_path / "certs"
                )
            )
        finally:
            postgres_server.drop_database(database_url)
        assert again == topology
        assert topology["topic_arn"].endswith(f":{TOPIC_NAME}")
        queue_url = f"{localstack.endpoint_url}/queue/us-east-1/000000000000/sms_notifications"
        assert topology["sms_notifications"] == queue_url
        assert asyncio.run(_topology_problems(localstack)) == []
        # LocalStack calls every address verified when asked, but sends only from verified ones:
        # this send proves prepare_system really verified it.
        _client("ses", localstack).send_email(
            Source="sender@notifications.com",
            Destination={"ToAddresses": ["demo@example.com"]},
            Message={"Subject": {"Data": "prepared"}, "Body": {"Text": {"Data": "prepared"}}},
        )

    def test_a_second_ses_regions_receipts_reach_the_primary_email_events_queue(
        self, localstack: LocalStackServer, postgres_server: PostgresServer, tmp_path: Path
    ) -> None:
        """LocalStack's SES publishes the configuration set's events (moto's does not), so here
        the whole path runs: SES in eu-west-1 -> eu-west-1's email_events topic -> the primary
        region's email_events queue."""
        database_url = postgres_server.create_database()
        try:
            topology = asyncio.run(
                prepare_system(
                    database_url=database_url,
                    aws_endpoint_url=localstack.endpoint_url,
                    certs_dir=tmp_path / "certs",
                    email_regions=("eu-west-1",),
                )
            )
        finally:
            postgres_server.drop_database(database_url)
        sent = aws_client("ses", localstack.endpoint_url, region="eu-west-1").send_email(
            Source="sender@notifications.com",
            Destination={"ToAddresses": ["demo@example.com"]},
            Message={"Subject": {"Data": "second region"}, "Body": {"Text": {"Data": "second region"}}},
            ConfigurationSetName=EMAIL_CONFIGURATION_SET,
        )
        sqs = _client("sqs", localstack)
        deadline = time.monotonic() + 30
        events: list[tuple[str, dict[str, Any]]] = []
        while time.monotonic() < deadline and not any(event.get("mail", {}).get("messageId") == sent["MessageId"] for _, event in events):
            for message in sqs.receive_message(QueueUrl=topology[EMAIL_EVENTS_QUEUE], MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                envelope = json.loads(message["Body"])
                # Besides events, SES sends each topic a "Successfully validated SNS topic" text.
                if envelope["Message"].startswith("{"):
                    events.append((envelope["TopicArn"], json.loads(envelope["Message"])))
                sqs.delete_message(QueueUrl=topology[EMAIL_EVENTS_QUEUE], ReceiptHandle=message["ReceiptHandle"])
        [(topic, event)] = [(topic, event) for topic, event in events if event["mail"]["messageId"] == sent["MessageId"]]
        assert topic == f"arn:aws:sns:eu-west-1:000000000000:{EMAIL_EVENTS_TOPIC_NAME}"
        assert event["eventType"] == "Delivery"

    def test_filter_policies_route_on_the_string_array_channels_attribute(self, localstack: LocalStackServer) -> None:
        topology = _prepared_topology(localstack)
        sns, sqs = _client("sns", localstack), _client("sqs", localstack)
        for lane in Lane:
            for channels in (["sms"], ["email", "slack"], ["sms", "email", "slack"]):
                sns.publish(
                    TopicArn=topology["topic_arn"],
                    Message=json.dumps([lane.value, *channels]),
                    MessageAttributes={
                        CHANNELS_ATTRIBUTE: {"DataType": "String.Array", "StringValue": json.dumps(channels)},
                        LANE_ATTRIBUTE: {"DataType": "String", "StringValue": lane.value},
                    },
                )

        for lane in Lane:
            received = {channel: _drain(sqs, topology[queues_for(channel, lane).queue], expected=3, wait=1) for channel in Channel}
            # Each queue gets its channel's two messages of its own lane and nothing of the other (a third is waited for).
            assert received == {
                Channel.SMS: sorted([f'["{lane.value}", "sms"]', f'["{lane.value}", "sms", "email", "slack"]']),
                Channel.EMAIL: sorted([f'["{lane.value}", "email", "slack"]', f'["{lane.value}", "sms", "email", "slack"]']),
                Channel.SLACK: sorted([f'["{lane.value}", "email", "slack"]', f'["{lane.value}", "sms", "email", "slack"]']),
            }, lane

    def test_redrive_to_the_dlq_and_back_with_start_message_move_task(self, localstack: LocalStackServer) -> None:
        sqs = _client("sqs", localstack)
        dlq_url = sqs.create_queue(QueueName="move_test_dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"})
        queue_url = sqs.create_queue(
            QueueName="move_test", Attributes={"VisibilityTimeout": "1", "RedrivePolicy": redrive}
        )["QueueUrl"]
        sqs.send_message(QueueUrl=queue_url, MessageBody="dead letter")
        assert sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
        time.sleep(1.5)
        assert _drain(sqs, queue_url, expected=0, wait=1) == []  # this receive moved it to the DLQ
        assert _depth(sqs, dlq_url) == 1

        sqs.start_message_move_task(SourceArn=dlq_arn)

        deadline = time.monotonic() + 20
        while (tasks := sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"])[0]["Status"] == "RUNNING":
            assert time.monotonic() < deadline, tasks
            time.sleep(0.2)
        assert tasks[0]["Status"] == "COMPLETED", tasks
        assert _drain(sqs, queue_url, expected=1) == ["dead letter"]

    def test_reset_forgets_everything(self, localstack: LocalStackServer) -> None:
        _prepared_topology(localstack)
        _client("sns", localstack).publish(PhoneNumber="+14155552671", Message="before reset")

        localstack.reset()

        assert localstack.sent_sms() == []
        assert localstack.sent_emails() == []
        assert _client("sqs", localstack).list_queues().get("QueueUrls", []) == []
        assert _client("sns", localstack).list_topics()["Topics"] == []
        assert _client("ses", localstack).list_identities()["Identities"] == []
        assert asyncio.run(_topology_problems(localstack)) == [f"topic {TOPIC_NAME!r} is missing"]


def _prepared_topology(localstack: LocalStackServer) -> dict[str, str]:
    async def create() -> dict[str, str]:
        async with aws_clients(ServiceSettings(aws_endpoint_url=localstack.endpoint_url), "sns", "sqs") as (sns, sqs):
            return await create_topology(sns, sqs)

    return asyncio.run(create())


async def _topology_problems(localstack: LocalStackServer) -> list[str]:
    async with aws_clients(ServiceSettings(aws_endpoint_url=localstack.endpoint_url), "sns", "sqs") as (sns, sqs):
        return await verify_topology(sns, sqs)


def _drain(sqs: Any, queue_url: str, *, expected: int, wait: int = 2) -> list[str]:
    """Bodies received (and deleted) until ``expected`` arrived or a receive comes back empty, sorted."""
    bodies: list[str] = []
    while True:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
        messages = answer.get("Messages", [])
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if not messages or len(bodies) >= expected:
            return sorted(bodies)


def _depth(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])
