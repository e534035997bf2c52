"""The data steps of terraform/README.md's failover runbook, on the emulator: two regions of the
session's moto (``harness/region.py``) and one database, which in AWS is region B's promoted
replica of region A's.

In A a gateway accepts notifications (SMS and email) and senders deliver some of them; then A is
lost with what its queues held: its senders and gateway stop, its queues are deleted. In B, with
exactly the runbook's commands: the topology (``notifyctl topology verify || notifyctl topology
create``, step 3) and ``notifyctl reconcile --dry-run`` then ``notifyctl reconcile`` (step 4), with
B's gateway and senders running (step 2). Every accepted delivery is then delivered once: those A
delivered are not sent again, those A's queues lost are sent from B. As in the reconcile test, time
is simulated: the rows are moved an hour back (the runbook's hour of RTO), past reconcile's default
--older-than of 15 minutes.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.database import Database
from harness.gateway import Certificates
from harness.postgres import PostgresServer
from harness.region import Region
from harness.waiting import wait_until
from shared.channels import Channel
from shared.migrate import upgrade
from shared.topology import ALL_QUEUES
from stack.moto import MotoServer

pytestmark = pytest.mark.timeout(300)

CHANNELS = (Channel.SMS, Channel.EMAIL)
RUNBOOK = (Path(__file__).resolve().parents[2] / "terraform" / "README.md").read_text()
# The runbook's commands, run here as written: step 3 in a shell (on the emulator, not AWS: without
# its `AWS_ENDPOINT_URL=`), step 4's one-off task commands.
TOPOLOGY_STEP = "AWS_REGION=$B AWS_ENDPOINT_URL= notifyctl topology verify || AWS_REGION=$B AWS_ENDPOINT_URL= notifyctl topology create"
RECONCILE_STEPS = (["notifyctl", "reconcile", "--dry-run"], ["notifyctl", "reconcile"])
AN_HOUR_AGO = (
    "UPDATE deliveries SET updated_at = updated_at - interval '1 hour', published_at = published_at - interval '1 hour', "
    "claimed_until = claimed_until - interval '1 hour'"
)


@pytest.fixture(scope="module")
def regions(moto: MotoServer, postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Region, Region]]:
    with postgres_server.fresh_database() as database_url:
        upgrade(database_url)
        logs = tmp_path_factory.mktemp("dr-logs")
        first, second = Region("eu-west-1", moto.endpoint_url, database_url, logs), Region("eu-central-1", moto.endpoint_url, database_url, logs)
        try:
            yield first, second
        finally:
            first.stop()
            second.stop()


def accept(region: Region, count: int, tag: str) -> list[str]:
    """Notifications accepted by the region's gateway, each for SMS and email; their texts."""
    (gateway,) = region.gateways
    texts = []
    with gateway.client() as client:
        for number in range(count):
            name = f"dr-{tag}-{number}"
            contacts = {"phone_number": f"+1415555{number:04d}", "email": f"{name}@example.com"}
            assert client.put(f"/recipients/{name}", json=contacts).status_code == 204
            text = f"dr {tag} {uuid.uuid4()}"
            response = client.post("/notifications", json={"recipient": name, "subject": "DR", "message": text})
            assert response.status_code == 201, response.text
            assert response.json()["channels"] == [channel.value for channel in CHANNELS]
            texts.append(text)
    return texts


def delivered(database: Database, texts: list[str]) -> int:
    rows = database.fetch(
        "SELECT count(*) AS n FROM deliveries AS d JOIN notifications AS n ON n.id = d.notification_id "
        "WHERE n.message = ANY($1::text[]) AND d.status = 'sent'",
        texts,
    )
    return rows[0]["n"]


def test_region_b_delivers_everything_region_a_accepted(regions: tuple[Region, Region], certificates: Certificates, moto: MotoServer) -> None:
    first, second = regions
    database = Database(first.database_url)

    # Region A in service: some notifications delivered, then its senders stop and more wait in its queues.
    first.prepare()
    first.start_gateway(certificates)
    first.start_senders(*CHANNELS)
    delivered_in_a = accept(first, 5, "a")
    wait_until(lambda: delivered(database, delivered_in_a) == 10, timeout=60, what="A's first deliveries")
    first.senders.stop_all()
    queued_in_a = accept(first, 15, "queued")
    wait_until(lambda: all(first.queue_depth(channel) == 15 for channel in CHANNELS), timeout=30, what="A's queues holding 15 each")

    # A is lost, with its queues.
    first.stop()
    sqs = first.client("sqs")
    for spec in ALL_QUEUES:
        for queue in (spec.queue, spec.dead_letter_queue):
            sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=queue)["QueueUrl"])
    database.fetch(AN_HOUR_AGO)

    # Region B: the runbook's steps 2 (services on the promoted database), 3 and 4.
    step = subprocess.run(
        ["bash", "-c", TOPOLOGY_STEP.replace("AWS_ENDPOINT_URL= ", "")],
        env={**second.environment, "B": second.name},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert step.returncode == 0, step.stdout + step.stderr
    assert "topic_arn" in step.stdout  # verify found nothing there: create made it
    second.verify_email_identity()
    second.start_gateway(certificates)
    second.start_senders(*CHANNELS)

    dry_run, reconcile = (command[1:] for command in RECONCILE_STEPS)
    dry = json.loads(second.notifyctl(*dry_run, "--json").stdout)
    assert {c["channel"]: c["found"] for c in dry["channels"]} == {"sms": 15, "email": 15, "slack": 0}
    assert delivered(database, queued_in_a) == 0  # the dry run published nothing

    done = json.loads(second.notifyctl(*reconcile, "--json").stdout)
    assert {c["channel"]: c["republished"] for c in done["channels"]} == {"sms": 15, "email": 15, "slack": 0}

    wait_until(lambda: delivered(database, queued_in_a) == 30, timeout=90, what="B delivering what A's queues lost")
    every = [*delivered_in_a, *queued_in_a]
    sms = Counter(message["message"] for message in moto.sent_sms())
    emails = Counter(message["body"] for message in moto.sent_emails())
    assert {text: (sms[text], emails[text]) for text in every} == {text: (1, 1) for text in every}


def test_the_runbook_names_these_commands() -> None:
    assert TOPOLOGY_STEP in RUNBOOK
    for command in RECONCILE_STEPS:
        assert f'"command": {json.dumps(command)}' in RUNBOOK, command
