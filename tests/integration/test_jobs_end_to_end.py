"""CSV jobs from the upload to the providers, on the session's whole system (moto, WireMock, the
gateway and the three senders, shared with ``test_end_to_end.py``'s moto runs): a 1,000-row job
delivered on every channel exactly once and counted right, and a cancel midway that leaves what
was sent sent and cancels the rest.
"""

from __future__ import annotations

import secrets
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from harness.system import System
from harness.waiting import wait_until

pytestmark = pytest.mark.timeout(300)

ROWS = 1_000


@pytest.fixture(autouse=True)
def _reset(system: System) -> None:
    system.reset()


def put_template(system: System, name: str, tag: str) -> None:
    with system.gateway.client() as client:
        response = client.put(
            f"/templates/{name}",
            json={
                "sms": f"Row ((row)) {tag}",
                "email": {"subject": "Job ((row))", "body": f"Row ((row)) {tag}"},
                "slack": f"Row ((row)) {tag}",
            },
        )
        assert response.status_code == 201, response.text


def test_a_thousand_rows_are_delivered_on_every_channel_once(system: System) -> None:
    tag = secrets.token_hex(4)
    template = f"job-e2e-{tag}"
    put_template(system, template, tag)
    lines = ["phone_number,email,slack_id,row"]
    lines += [f"+1415555{index:04d},row-{index}-{tag}@example.com,U0JOB{index:05d},{index}" for index in range(ROWS)]
    with system.gateway.client() as client:
        response = client.post("/jobs", params={"template": template}, content="\n".join(lines).encode(), headers={"Content-Type": "text/csv"})
        assert response.status_code == 201, response.text
        job = response.json()
        assert (job["rows"], job["status"]) == (ROWS, "in_progress")

        def finished() -> dict | None:
            progress = client.get(f"/jobs/{job['id']}").json()
            return progress if progress["status"] == "finished" else None

        progress = wait_until(finished, timeout=240, interval=1, what="the job finished")
    # Sent, or delivered by a receipt the emulator's SES events write.
    for channel in ("sms", "email", "slack"):
        assert sum(progress["counts"][channel].get(status, 0) for status in ("sent", "delivered")) == ROWS, progress["counts"]

    texts = {f"Row {index} {tag}" for index in range(ROWS)}
    sms = Counter(message["message"] for message in system.aws.sent_sms() if message["message"] in texts)
    emails = Counter(message["body"] for message in system.aws.sent_emails() if message["body"] in texts)
    slack = Counter(post["text"] for post in system.slack.posts() if post["text"] in texts)
    for delivered in (sms, emails, slack):
        assert set(delivered) == texts
        assert set(delivered.values()) == {1}


def test_cancel_midway_leaves_sent_ones_sent_and_cancels_the_rest(system: System) -> None:
    """Rows for a recipient in quiet hours are held (scheduled) while the others are sent: the
    cancel comes once those are sent and the held ones are still waiting."""
    tag = secrets.token_hex(4)
    template = f"job-cancel-{tag}"
    put_template(system, template, tag)
    now = datetime.now(UTC)
    awake, asleep = f"awake-{tag}", f"asleep-{tag}"
    quiet = {"start": (now - timedelta(hours=1)).strftime("%H:%M"), "end": (now + timedelta(hours=2)).strftime("%H:%M"), "timezone": "UTC"}
    with system.gateway.client() as client:
        assert client.put(f"/recipients/{awake}", json={"slack_id": "U0AWAKE123"}).status_code == 204
        assert client.put(f"/recipients/{asleep}", json={"slack_id": "U0ASLEEP12"}).status_code == 204
        assert client.put(f"/recipients/{asleep}/preferences", json={"quiet_hours": quiet}).status_code == 204
        csv = "recipient,row\n" + "".join(f"{awake if index % 2 else asleep},{index}\n" for index in range(20))
        job = client.post("/jobs", params={"template": template}, content=csv.encode(), headers={"Content-Type": "text/csv"}).json()

        def awake_ones_sent() -> dict | None:
            counts = client.get(f"/jobs/{job['id']}").json()["counts"]
            return counts if counts["slack"].get("sent") == 10 else None

        wait_until(awake_ones_sent, timeout=60, what="the rows of the recipient not in quiet hours sent")
        cancelled = client.post(f"/jobs/{job['id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        assert cancelled.json()["counts"] == {"slack": {"sent": 10, "cancelled": 10}}
        held = client.get(f"/jobs/{job['id']}/notifications", params={"status": "cancelled", "limit": 100}).json()["items"]
        assert {item["recipient"] for item in held} == {asleep}
    assert len(system.slack.posts(channel="U0ASLEEP12")) == 0
