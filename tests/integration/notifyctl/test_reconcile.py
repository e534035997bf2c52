"""``notifyctl reconcile`` as operators run it (the console script as a subprocess), on a deployment
in a region of its own on the session's moto (``harness/region.py``), with real SMS senders.

A queue with messages on it is purged; reconcile publishes its deliveries again through the topic,
beside deliveries whose message survived and claims whose sender died, and every delivery is sent
exactly once. Time is the one thing simulated: the rows' timestamps are moved an hour back, as if
the operator came an hour after the loss.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from harness.database import Database, make_notification
from harness.postgres import PostgresServer
from harness.region import Region
from harness.waiting import wait_until
from shared.channels import Channel
from shared.messages import NotificationMessage
from shared.migrate import upgrade
from shared.topology import TOPIC_NAME, queues_for
from stack.moto import MotoServer

pytestmark = pytest.mark.timeout(240)

AN_HOUR_AGO = "UPDATE deliveries SET updated_at = updated_at - interval '1 hour', published_at = published_at - interval '1 hour' WHERE notification_id = ANY($1::uuid[])"


@pytest.fixture(scope="module")
def region(moto: MotoServer, postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Region]:
    with postgres_server.fresh_database() as database_url:
        upgrade(database_url)
        deployment = Region("ap-northeast-1", moto.endpoint_url, database_url, tmp_path_factory.mktemp("reconcile-logs"))
        deployment.prepare()
        yield deployment
        deployment.stop()


def accept(region: Region, count: int, *, publish: bool = True) -> list[NotificationMessage]:
    """SMS notifications as the gateway accepts them: rows, then (``publish``) the SNS message."""
    messages = [make_notification(channels=(Channel.SMS,), name=f"r{n}", text=f"reconcile {uuid.uuid4()}") for n in range(count)]
    Database(region.database_url).insert_notifications(messages)
    if publish:
        sns = region.client("sns")
        topic = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
        for message in messages:
            sns.publish(TopicArn=topic, Message=message.to_json(), MessageAttributes=message.sns_message_attributes())
    return messages


def reconcile(region: Region, *arguments: str, expect: int = 0) -> dict[str, Any]:
    result = region.notifyctl("reconcile", "--channel", "sms", *arguments, "--json", check=False)
    assert result.returncode == expect, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return json.loads(result.stdout or result.stderr)


def sms_row(result: dict[str, Any]) -> dict[str, Any]:
    (row,) = result["channels"]
    assert row["channel"] == "sms"
    return row


def test_a_purged_queue_is_sent_again_once_each(region: Region, moto: MotoServer) -> None:
    database = Database(region.database_url)
    sqs = region.client("sqs")
    lost = accept(region, 30)
    wait_until(lambda: region.queue_depth(Channel.SMS) == 30, timeout=30, what="30 messages on the SMS queue")
    sqs.purge_queue(QueueUrl=region.queue_url(Channel.SMS))
    survivors = accept(region, 5)  # still on the queue: their second copy must be harmless
    wait_until(lambda: region.queue_depth(Channel.SMS) == 5, timeout=30, what="the survivors on the SMS queue")
    # Claimed by a sender that died mid-send, and whose message is gone too.
    orphans = accept(region, 3, publish=False)
    orphan_ids = [m.notification_id for m in orphans]
    database.fetch(
        "UPDATE deliveries SET status = 'sending', attempts = 1, claimed_by = 'sender_sms-dead', claimed_until = now() - interval '50 minutes' "
        "WHERE notification_id = ANY($1::uuid[])",
        orphan_ids,
    )
    everything = [*lost, *survivors, *orphans]
    ids = [m.notification_id for m in everything]

    # Nothing quiet for 15 minutes yet: nothing is lost.
    assert sms_row(reconcile(region, "--dry-run"))["found"] == 0
    database.fetch(AN_HOUR_AGO, ids)

    dry = sms_row(reconcile(region, "--dry-run"))
    assert (dry["found"], dry["pending"], dry["sending"], dry["republished"]) == (38, 35, 3, 0)
    assert database.fetch("SELECT count(*) AS n FROM outbox")[0]["n"] == 0
    assert region.queue_depth(Channel.SMS) == 5

    # A queue whose oldest message is older than --older-than still holds live messages: refused.
    region.client("cloudwatch").put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[{
            "MetricName": "ApproximateAgeOfOldestMessage",
            "Dimensions": [{"Name": "QueueName", "Value": queues_for(Channel.SMS).queue}],
            "Value": 2400.0,
            "Unit": "Seconds",
            "Timestamp": datetime.now(UTC),
        }],
    )  # fmt: skip
    refused = reconcile(region, "--older-than", "30m", expect=1)
    assert "refused, nothing published" in refused["error"]["message"] and "40.0m old" in refused["error"]["message"]
    assert database.fetch("SELECT count(*) AS n FROM outbox")[0]["n"] == 0

    done = sms_row(reconcile(region, "--older-than", "50m"))
    assert (done["found"], done["republished"], done["left_in_outbox"]) == (38, 38, 0)
    # Published through the topic and noted as published; nothing owed any more.
    wait_until(lambda: region.queue_depth(Channel.SMS) == 5 + 38, timeout=30, what="the re-published messages on the queue")
    rows = database.fetch("SELECT status, published_at FROM deliveries WHERE notification_id = ANY($1::uuid[])", ids)
    assert all(row["published_at"] is not None for row in rows)
    assert database.fetch("SELECT count(*) AS n FROM outbox")[0]["n"] == 0
    assert sms_row(reconcile(region, "--dry-run"))["found"] == 0

    region.start_senders(Channel.SMS, replicas=2)
    database.wait_for_all(ids, Channel.SMS, "sent", timeout=90)
    wait_until(lambda: region.queue_depth(Channel.SMS) == 0, timeout=60, what="the survivors' second copies deleted unsent")
    sent = Counter(sms["message"] for sms in moto.sent_sms())
    assert {m.message: sent[m.message] for m in everything} == {m.message: 1 for m in everything}


def test_bad_durations_are_refused(region: Region) -> None:
    for value, expected in (("soon", "takes a duration"), ("30s", "at least 2.0m")):
        result = region.notifyctl("reconcile", "--older-than", value, check=False)
        assert result.returncode == 2 and expected in result.stderr, result.stderr
