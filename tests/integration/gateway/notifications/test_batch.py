"""POST /notifications/batch on the real gateway: items judged one by one, the valid ones stored
together (one statement, one transaction), per-item results, the Idempotency-Key over the batch,
the client's reference in the status and the callback payload, and the bulk lane: batch items
reach the channels' ``_bulk_notifications`` queues, one-offs never do.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from harness.aws import QueueReader
from harness.gateway import Certificates, GatewayProcess
from harness.postgres import fetch
from mtls import pki

PUBLIC = "https://203.0.114.10/hooks"  # a literal public address: no DNS needed


def unique(name: str) -> str:
    return f"{name}-{secrets.token_hex(3)}"


@pytest.fixture
def recipient(gateway: GatewayProcess) -> str:
    name = unique("bulk")
    with gateway.client() as client:
        assert client.put(f"/recipients/{name}", json={"phone_number": "+14155552671", "email": "b@example.com"}).status_code == 204
    return name


class TestMixedItems:
    def test_each_item_judged_on_its_own_and_the_valid_ones_stored_together(
        self, gateway: GatewayProcess, queues: QueueReader, database_url: str, recipient: str
    ) -> None:
        items = [
            {"recipient": recipient, "message": "first", "reference": "order-1"},
            {"recipient": "nobody-" + secrets.token_hex(3), "message": "lost"},
            {"recipient": recipient, "message": "no subject\nhere", "subject": "two\nlines"},
            "not an object",
            {"recipient": recipient, "message": "second", "channels": ["email"], "reference": "order-2"},
            {"recipient": recipient, "template": "no-such-template-" + secrets.token_hex(3)},
            {"recipient": recipient, "message": "x", "reference": "r" * 129},
        ]
        with gateway.client() as client:
            response = client.post("/notifications/batch", json={"notifications": items})
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert [result["index"] for result in results] == list(range(len(items)))
        assert [result["status"] for result in results] == [201, 400, 400, 400, 201, 400, 400]
        assert results[0]["reference"] == "order-1" and results[4]["reference"] == "order-2"
        assert results[1]["message"].startswith("unknown recipient: 'nobody-")
        assert results[2]["message"] == "email subject must be one line, without CR or LF"
        assert results[3]["message"] == "the request body must be a JSON object"
        assert results[5]["message"].startswith("template not found: no-such-template-")
        assert results[6]["field"] == "reference" and "128" in results[6]["message"]

        stored = fetch(
            database_url,
            "SELECT id, reference, bulk, created_at FROM notifications WHERE id = ANY($1::uuid[]) ORDER BY reference",
            [uuid.UUID(results[0]["id"]), uuid.UUID(results[4]["id"])],
        )
        assert [(row["reference"], row["bulk"]) for row in stored] == [("order-1", True), ("order-2", True)]
        # now() is the transaction's start: the same for both, so they were stored by one transaction.
        assert stored[0]["created_at"] == stored[1]["created_at"]
        assert not fetch(database_url, "SELECT 1 FROM notifications WHERE recipient = $1 AND message = 'x'", recipient)

        first = queues.wait_for(results[0]["id"], queues=2)
        assert sorted(queue for queue, _, _ in first) == ["email_bulk_notifications", "sms_bulk_notifications"]
        assert {attributes["lane"]["StringValue"] for _, _, attributes in first} == {"bulk"}
        second = queues.wait_for(results[4]["id"], queues=1)
        assert [queue for queue, _, _ in second] == ["email_bulk_notifications"]

    def test_the_status_shows_the_reference_and_a_one_off_stays_in_the_standard_lane(
        self, gateway: GatewayProcess, queues: QueueReader, recipient: str
    ) -> None:
        with gateway.client() as client:
            batch = client.post("/notifications/batch", json={"notifications": [{"recipient": recipient, "message": "m", "reference": "ref-7"}]})
            one_off = client.post("/notifications", json={"recipient": recipient, "message": "m", "channels": ["sms"]}).json()
            status = client.get(f"/notifications/{batch.json()['results'][0]['id']}").json()
            assert client.get(f"/notifications/{one_off['id']}").json()["reference"] is None
        assert status["reference"] == "ref-7"
        published = queues.wait_for(one_off["id"], queues=1)
        assert [(queue, attributes["lane"]["StringValue"]) for queue, _, attributes in published] == [("sms_notifications", "standard")]

    def test_the_reference_is_in_the_callback_payload(
        self, gateway: GatewayProcess, certificates: Certificates, database_url: str, recipient: str
    ) -> None:
        client_name = unique("batch-callbacks")
        pki.issue_client_certificate(certificates.paths.directory, client_name, ("notifications", "recipients"))
        with gateway.client(client_name) as client:
            assert client.put("/callbacks", json={"url": PUBLIC}).status_code == 200
            # SMS turned off: its delivery is born skipped, which is an event at once.
            assert client.put(f"/recipients/{recipient}/preferences", json={"channels": {"sms": False}}).status_code == 204
            answer = client.post(
                "/notifications/batch",
                json={"notifications": [{"recipient": recipient, "message": "m", "reference": "cb-1"}, {"recipient": recipient, "message": "n"}]},
            ).json()
            ids = [uuid.UUID(result["id"]) for result in answer["results"]]
            events = fetch(database_url, "SELECT notification_id, type, data FROM callback_events WHERE notification_id = ANY($1::uuid[])", ids)
            client.delete("/callbacks")  # which drops its pending events
        by_id = {row["notification_id"]: row for row in events}
        assert by_id[ids[0]]["type"] == "delivery.skipped"
        assert '"reference": "cb-1"' in by_id[ids[0]]["data"]
        assert "reference" not in by_id[ids[1]]["data"]


class TestScheduled:
    def test_items_take_send_at_as_post_notifications_does(self, gateway: GatewayProcess, recipient: str) -> None:
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        items = [
            {"recipient": recipient, "message": "later", "send_at": later, "reference": "later-1"},
            {"recipient": recipient, "message": "no offset", "send_at": "2026-12-02T09:00:00"},
        ]
        with gateway.client() as client:
            results = client.post("/notifications/batch", json={"notifications": items}).json()["results"]
            assert [result["status"] for result in results] == [201, 400]
            assert results[1]["message"] == "send_at needs a UTC offset"
            status = client.get(f"/notifications/{results[0]['id']}").json()
        assert status["reference"] == "later-1" and status["send_at"] is not None
        assert {delivery["status"] for delivery in status["deliveries"].values()} == {"scheduled"}


class TestIsolation:
    def test_batch_items_belong_to_the_client_that_posted_them(self, gateway: GatewayProcess, recipient: str) -> None:
        with gateway.client("acme-billing") as http:
            answer = http.post("/notifications/batch", json={"notifications": [{"recipient": recipient, "message": "theirs"}]}).json()
            notification_id = answer["results"][0]["id"]
            assert http.get(f"/notifications/{notification_id}").json()["client"] == "acme-billing"
        with gateway.client("client-notifications") as http:
            refused = http.get(f"/notifications/{notification_id}")
        assert refused.status_code == 404
        assert refused.json() == {"message": f"no notification with id {notification_id}"}


class TestLimits:
    def test_over_a_thousand_items_or_none_is_a_400_naming_the_limit(self, gateway: GatewayProcess) -> None:
        with gateway.client() as client:
            too_many = client.post("/notifications/batch", json={"notifications": [{"recipient": "x", "message": "m"}] * 1001})
            empty = client.post("/notifications/batch", json={"notifications": []})
            not_a_list = client.post("/notifications/batch", json={"notifications": {"recipient": "x"}})
        assert too_many.status_code == 400
        assert too_many.json()["message"] == "a batch takes at most 1,000 notifications; this one has 1,001"
        assert empty.status_code == 400 and empty.json()["message"] == "a batch needs at least one notification"
        assert not_a_list.status_code == 400 and not_a_list.json()["field"] == "notifications"

    def test_a_thousand_items_over_the_single_body_limit_are_accepted(self, gateway: GatewayProcess, recipient: str) -> None:
        items = [{"recipient": recipient, "message": f"item {index} " + "x" * 100, "channels": ["email"]} for index in range(1000)]
        with gateway.client() as client:
            response = client.post("/notifications/batch", json={"notifications": items}, timeout=60)
        assert response.status_code == 200, response.text
        assert {result["status"] for result in response.json()["results"]} == {201}

    def test_the_role_notifications_is_needed(self, gateway: GatewayProcess) -> None:
        with gateway.client("client-recipients") as client:
            response = client.post("/notifications/batch", json={"notifications": [{"recipient": "x", "message": "m"}]})
        assert response.status_code == 403


class TestIdempotency:
    def test_a_replay_answers_the_stored_items_as_before_and_publishes_nothing_again(
        self, gateway: GatewayProcess, queues: QueueReader, database_url: str, recipient: str
    ) -> None:
        key = unique("batch-key")
        late = unique("late")
        body = {"notifications": [{"recipient": recipient, "message": "once", "channels": ["sms"]}, {"recipient": late, "message": "later"}]}
        with gateway.client() as client:
            first = client.post("/notifications/batch", json=body, headers={"Idempotency-Key": key})
            assert [result["status"] for result in first.json()["results"]] == [201, 400]
            # Formatting and key order do not matter; the refused item is judged again.
            assert client.put(f"/recipients/{late}", json={"email": "late@example.com"}).status_code == 204
            replay = client.post(
                "/notifications/batch",
                content='{"notifications": [{"channels": ["sms"], "message": "once", "recipient": "%s"}, {"message": "later", "recipient": "%s"}]}'
                % (recipient, late),
                headers={"Idempotency-Key": key, "content-type": "application/json"},
            )
            assert replay.status_code == 200, replay.text
            assert replay.headers["Idempotent-Replayed"] == "true"
            results = replay.json()["results"]
            assert results[0] == first.json()["results"][0]
            assert results[1]["status"] == 201

            changed = client.post(
                "/notifications/batch",
                json={"notifications": [*body["notifications"], {"recipient": recipient, "message": "extra"}]},
                headers={"Idempotency-Key": key},
            )
            assert changed.status_code == 409
            assert "different batch" in changed.json()["message"]
            # The same key is the client's own: POST /notifications with it is a new notification.
            assert client.post("/notifications", json={"recipient": recipient, "message": "m"}, headers={"Idempotency-Key": key}).status_code == 201
        assert not fetch(database_url, "SELECT 1 FROM notifications WHERE recipient = $1 AND message = 'extra'", recipient)
        assert len(fetch(database_url, "SELECT 1 FROM notifications WHERE recipient = $1 AND message = 'once'", recipient)) == 1
        once = first.json()["results"][0]["id"]
        queues.wait_for(once, queues=1, timeout=60)
        queues.wait_for(once, queues=2, timeout=2)  # nothing else turns up
        assert len(queues.seen[once]) == 1

    def test_keys_are_per_client(self, gateway: GatewayProcess, recipient: str) -> None:
        key = unique("shared-key")
        body = {"notifications": [{"recipient": recipient, "message": "mine"}]}
        with gateway.client() as client, gateway.client("acme-billing") as other:
            mine = client.post("/notifications/batch", json=body, headers={"Idempotency-Key": key}).json()
            theirs = other.post("/notifications/batch", json=body, headers={"Idempotency-Key": key}).json()
        assert mine["results"][0]["id"] != theirs["results"][0]["id"]

    def test_an_invalid_key_is_a_400(self, gateway: GatewayProcess) -> None:
        with gateway.client() as client:
            response = client.post("/notifications/batch", json={"notifications": [{}]}, headers={"Idempotency-Key": "with space"})
        assert response.status_code == 400
        assert "Idempotency-Key" in response.json()["message"]
