"""The gateway's API through a real client, a real TLS connection and the real gateway process.

The first classes are the original (Go) system's cases, which its clients rely on unchanged.
"""

from __future__ import annotations

import json
import secrets
import uuid

import pytest

from harness.aws import QueueReader
from harness.gateway import GatewayProcess
from harness.postgres import fetch

JANE = {"phone_number": "+14155552671", "email": "jane@example.com", "slack_id": "U0123456789"}
NO_CONTACT = "at least one contact method (phone number, email or Slack ID) must be provided"


def unique(name: str) -> str:
    return f"{name}-{secrets.token_hex(3)}"


def put_recipient(gateway: GatewayProcess, name: str, contacts: dict) -> None:
    with gateway.client() as client:
        response = client.put(f"/recipients/{name}", json=contacts)
    assert response.status_code == 204, response.text


class TestRecipients:
    def test_create_read_update_delete(self, gateway: GatewayProcess) -> None:
        name = unique("jane")
        with gateway.client() as client:
            assert client.put(f"/recipients/{name}", json=JANE).status_code == 204
            response = client.get(f"/recipients/{name}")
            assert response.status_code == 200
            assert response.json() == {"name": name, **JANE}

            assert client.put(f"/recipients/{name}", json={"email": "jane@new.example.com"}).status_code == 204
            # PUT replaces: the contact methods not given are gone, and absent from the body.
            assert client.get(f"/recipients/{name}").json() == {"name": name, "email": "jane@new.example.com"}

            assert client.delete(f"/recipients/{name}").status_code == 204
            missing = client.get(f"/recipients/{name}")
            assert missing.status_code == 404
            assert name in missing.json()["message"]

    def test_delete_unknown_is_no_content(self, gateway: GatewayProcess) -> None:
        with gateway.client() as client:
            assert client.delete(f"/recipients/{unique('nobody')}").status_code == 204

    def test_no_contact_method(self, gateway: GatewayProcess) -> None:
        with gateway.client() as client:
            for body in ({}, {"phone_number": "", "email": "", "slack_id": ""}, {"email": None}):
                response = client.put(f"/recipients/{unique('empty')}", json=body)
                assert response.status_code == 400
                assert NO_CONTACT in response.text

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("phone_number", "12345"),
            ("phone_number", "+1555"),
            ("phone_number", "+1 415 555 2671"),
            ("phone_number", "+19999999999"),
            ("email", "not-an-email"),
            ("email", "jane@"),
            ("slack_id", "general"),
            ("slack_id", "u0123456789"),
            ("phone_number", 14155552671),
        ],
    )
    def test_invalid_field_names_the_field(self, gateway: GatewayProcess, field: str, value: object) -> None:
        with gateway.client() as client:
            response = client.put(f"/recipients/{unique('bad')}", json={field: value})
        assert response.status_code == 400
        body = response.json()
        assert body["field"] == field
        assert field in body["message"]

    @pytest.mark.parametrize("name", ["-leading", "trailing ", "x" * 129, "semi;colon", "new%0Aline", "tab%09"])
    def test_invalid_name(self, gateway: GatewayProcess, name: str) -> None:
        with gateway.client() as client:
            response = client.put(f"/recipients/{name}", json=JANE)
        assert response.status_code == 400
        assert "name" in response.json()["message"]

    def test_names_with_spaces_and_unicode(self, gateway: GatewayProcess) -> None:
        name = unique("José Núñez")
        put_recipient(gateway, name, {"email": "jose@example.com"})
        with gateway.client() as client:
            assert client.get(f"/recipients/{name}").json()["name"] == name

    def test_body_that_is_not_json(self, gateway: GatewayProcess) -> None:
        with gateway.client() as client:
            response = client.put(f"/recipients/{unique('x')}", content=b"{nope", headers={"content-type": "application/json"})
            assert response.status_code == 400
            assert response.json()["message"] == "the request body is not valid JSON"
            response = client.put(f"/recipients/{unique('x')}", json=["a", "list"])
            assert response.status_code == 400

    def test_list_is_paginated_by_cursor(self, gateway: GatewayProcess) -> None:
        prefix = unique("page")
        names = sorted(f"{prefix}-{i:02d}" for i in range(7))
        for name in names:
            put_recipient(gateway, name, {"slack_id": "U0123456789"})
        seen: list[str] = []
        cursor = None
        with gateway.client() as client:
            while True:
                params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
                page = client.get("/recipients", params=params).json()
                seen += [item["name"] for item in page["items"]]
                cursor = page.get("next_cursor")
                if cursor is None:
                    break
            assert [name for name in seen if name.startswith(prefix)] == names
            assert seen == sorted(seen)
            assert client.get("/recipients", params={"cursor": "!!!"}).status_code == 400
            assert client.get("/recipients", params={"limit": 0}).status_code == 400


class TestNotifications:
    def test_accepted_and_published_to_the_recipients_channels_only(self, gateway: GatewayProcess, queues: QueueReader) -> None:
        name = unique("sms-and-slack")
        put_recipient(gateway, name, {"phone_number": "+14155552671", "slack_id": "U0123456789"})
        with gateway.client() as client:
            response = client.post("/notifications", json={"recipient": name, "message": "Your order shipped"})
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["recipient"] == name
        assert body["message"] == "Your order shipped"
        assert body["channels"] == ["sms", "slack"]
        assert response.headers["location"] == f"/notifications/{body['id']}"

        deliveries = queues.wait_for(body["id"], queues=2)
        assert sorted(queue for queue, _, _ in deliveries) == ["slack_notifications", "sms_notifications"]
        queues.wait_for(body["id"], queues=3, timeout=2)  # nothing else turns up
        assert len(queues.seen[body["id"]]) == 2
        _, message, attributes = deliveries[0]
        assert message["recipient"] == {"name": name, "phone_number": "+14155552671", "slack_id": "U0123456789"}
        assert message["message"] == "Your order shipped"
        assert message["client"] == "client"
        assert json.loads(attributes["channels"]["StringValue"]) == ["sms", "slack"]
        assert attributes["notification_id"]["StringValue"] == body["id"]

    def test_each_channel_alone_reaches_only_its_queue(self, gateway: GatewayProcess, queues: QueueReader) -> None:
        for channel, contacts in (
            ("sms", {"phone_number": "+14155552671"}),
            ("email", {"email": "only@example.com"}),
            ("slack", {"slack_id": "U0123456789"}),
        ):
            name = unique(channel)
            put_recipient(gateway, name, contacts)
            with gateway.client() as client:
                notification = client.post("/notifications", json={"recipient": name, "message": "hi"}).json()
            assert notification["channels"] == [channel]
            queues.wait_for(notification["id"], queues=1)
            queues.wait_for(notification["id"], queues=2, timeout=1)
            assert [queue for queue, _, _ in queues.seen[notification["id"]]] == [f"{channel}_notifications"]

    def test_requested_channels_subset(self, gateway: GatewayProcess, queues: QueueReader) -> None:
        name = unique("all")
        put_recipient(gateway, name, JANE)
        with gateway.client() as client:
            response = client.post("/notifications", json={"recipient": name, "message": "m", "subject": "S", "channels": ["email"]})
            assert response.status_code == 201
            assert response.json()["channels"] == ["email"]
            assert response.json()["subject"] == "S"
            deliveries = queues.wait_for(response.json()["id"], queues=1)
            assert deliveries[0][0] == "email_notifications"
            assert deliveries[0][1]["subject"] == "S"

            sms_only = unique("sms-only")
            put_recipient(gateway, sms_only, {"phone_number": "+14155552671"})
            refused = client.post("/notifications", json={"recipient": sms_only, "message": "m", "channels": ["sms", "slack"]})
            assert refused.status_code == 400
            assert "slack" in refused.json()["message"]
            assert refused.json()["field"] == "channels"
            assert client.post("/notifications", json={"recipient": sms_only, "message": "m", "channels": ["fax"]}).status_code == 400
            assert client.post("/notifications", json={"recipient": sms_only, "message": "m", "channels": []}).status_code == 400

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            ({"message": "hello"}, "missing recipient"),
            ({"recipient": "", "message": "hello"}, "missing recipient"),
            ({"recipient": "someone"}, "missing message"),
            ({"recipient": "someone", "message": "   "}, "missing message"),
            ({"recipient": "nobody-at-all", "message": "hello"}, "unknown recipient"),
        ],
    )
    def test_original_validation_messages(self, gateway: GatewayProcess, body: dict, expected: str) -> None:
        with gateway.client() as client:
            response = client.post("/notifications", json=body)
        assert response.status_code == 400
        assert expected in response.text

    def test_too_long_and_wrong_types(self, gateway: GatewayProcess) -> None:
        with gateway.client() as client:
            assert client.post("/notifications", json={"recipient": "a", "message": "x" * 10_001}).status_code == 400
            assert client.post("/notifications", json={"recipient": 5, "message": "x"}).status_code == 400
            assert client.post("/notifications", json={"recipient": "a", "message": {"x": 1}}).status_code == 400
            too_big = client.post("/notifications", content=b"x" * 70_000, headers={"content-type": "application/json"})
            assert too_big.status_code == 413
            assert "larger than" in too_big.json()["message"]

    def test_chunked_bodies_over_the_limit_get_413(self, gateway: GatewayProcess) -> None:
        # No Content-Length to refuse up front: the limit is found while the body is read, and
        # the answer is still 413 (FastAPI would make a 400 of it), on POST /notifications and
        # on the routes alike.
        def chunks():  # noqa: ANN202
            yield b'{"recipient": "a", "message": "'
            for _ in range(10):
                yield b"x" * 10_000
            yield b'"}'

        with gateway.client() as client:
            for method, path in (("POST", "/notifications"), ("PUT", "/recipients/chunked")):
                response = client.request(method, path, content=chunks(), headers={"content-type": "application/json"})
                assert response.status_code == 413, (method, path, response.text)
                assert "larger than" in response.json()["message"]

    def test_status_of_a_notification(self, gateway: GatewayProcess, database_url: str) -> None:
        name = unique("status")
        put_recipient(gateway, name, {"phone_number": "+14155552671", "email": "s@example.com"})
        with gateway.client() as client:
            created = client.post("/notifications", json={"recipient": name, "message": "m"}).json()
            status = client.get(f"/notifications/{created['id']}").json()
            assert status["id"] == created["id"]
            assert status["client"] == "client"
            assert set(status["deliveries"]) == {"sms", "email"}
            for delivery in status["deliveries"].values():
                assert delivery["status"] == "pending"
                assert delivery["attempts"] == 0
            assert client.get(f"/notifications/{uuid.uuid4()}").status_code == 404
            assert client.get("/notifications/not-a-uuid").status_code == 400
        rows = fetch(database_url, "SELECT client, client_serial FROM notifications WHERE id = $1", uuid.UUID(created["id"]))
        assert rows[0]["client"] == "client" and rows[0]["client_serial"]

    def test_each_notification_records_its_client(self, gateway: GatewayProcess) -> None:
        name = unique("billing")
        put_recipient(gateway, name, {"email": "b@example.com"})
        with gateway.client("acme-billing") as client:
            created = client.post("/notifications", json={"recipient": name, "message": "invoice"}).json()
            assert client.get(f"/notifications/{created['id']}").json()["client"] == "acme-billing"

    def test_snapshot_survives_recipient_changes(self, gateway: GatewayProcess, queues: QueueReader) -> None:
        name = unique("moving")
        put_recipient(gateway, name, {"email": "old@example.com"})
        with gateway.client() as client:
            created = client.post("/notifications", json={"recipient": name, "message": "m"}).json()
            client.delete(f"/recipients/{name}")
            assert client.get(f"/notifications/{created['id']}").status_code == 200
        _, message, _ = queues.wait_for(created["id"], queues=1)[0]
        assert message["recipient"]["email"] == "old@example.com"


class TestIdempotency:
    def test_repeat_returns_the_first_response_and_publishes_once(self, gateway: GatewayProcess, queues: QueueReader, database_url: str) -> None:
        name = unique("idem")
        put_recipient(gateway, name, {"phone_number": "+14155552671"})
        key = secrets.token_hex(8)
        with gateway.client() as client:
            first = client.post("/notifications", json={"recipient": name, "message": "once"}, headers={"Idempotency-Key": key})
            # Same body, different key order and formatting: still the same request.
            again = client.post(
                "/notifications",
                content=json.dumps({"message": "once", "recipient": name}, indent=2),
                headers={"Idempotency-Key": key, "content-type": "application/json"},
            )
            assert first.status_code == again.status_code == 201
            assert again.json() == first.json()
            assert again.headers["location"] == first.headers["location"]
            assert again.headers["idempotent-replayed"] == "true"

            conflict = client.post("/notifications", json={"recipient": name, "message": "different"}, headers={"Idempotency-Key": key})
            assert conflict.status_code == 409
            assert "Idempotency-Key" in conflict.json()["message"]

            # Keys belong to a client: another client may use the same key for its own request.
            other = gateway.client("acme-billing")
            with other:
                assert other.post("/notifications", json={"recipient": name, "message": "theirs"}, headers={"Idempotency-Key": key}).status_code == 201
        queues.wait_for(first.json()["id"], queues=2, timeout=3)
        assert len(queues.seen[first.json()["id"]]) == 1
        rows = fetch(database_url, "SELECT count(*) AS n FROM notifications WHERE idempotency_key = $1 AND client = 'client'", key)
        assert rows[0]["n"] == 1

    async def test_concurrent_repeats_create_one_notification(self, gateway: GatewayProcess, database_url: str) -> None:
        import asyncio

        name = unique("race")
        put_recipient(gateway, name, {"email": "race@example.com"})
        key = secrets.token_hex(8)
        async with gateway.async_client() as client:
            responses = await asyncio.gather(
                *(client.post("/notifications", json={"recipient": name, "message": "m"}, headers={"Idempotency-Key": key}) for _ in range(8))
            )
        assert {response.status_code for response in responses} == {201}
        assert len({response.json()["id"] for response in responses}) == 1
        assert fetch(database_url, "SELECT count(*) AS n FROM notifications WHERE idempotency_key = $1", key)[0]["n"] == 1

    def test_invalid_key(self, gateway: GatewayProcess) -> None:
        with gateway.client() as client:
            response = client.post("/notifications", json={"recipient": "x", "message": "m"}, headers={"Idempotency-Key": "x" * 300})
        assert response.status_code == 400
        assert "Idempotency-Key" in response.json()["message"]


class TestDocsAndOps:
    def test_openapi_and_docs(self, gateway: GatewayProcess) -> None:
        with gateway.client() as client:
            schema = client.get("/openapi.json").json()
            assert {"/recipients/{name}", "/recipients", "/notifications", "/notifications/{notification_id}"} <= set(schema["paths"])
            assert "422" not in json.dumps(schema["paths"])
            assert client.get("/docs").status_code == 200

    def test_unknown_route_and_method(self, gateway: GatewayProcess) -> None:
        with gateway.client() as client:
            assert client.get("/nothing-here").json()["message"] == "no such resource"
            assert client.patch("/notifications").status_code == 405

    def test_ops_port(self, gateway: GatewayProcess) -> None:
        import httpx

        assert httpx.get(f"{gateway.ops_url}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"{gateway.ops_url}/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "sns": "ok"}
        with gateway.client() as client:
            client.get("/recipients")
        metrics = httpx.get(f"{gateway.ops_url}/metrics").text
        for name in (
            "gateway_requests_total",
            "gateway_request_duration_seconds_bucket",
            "gateway_notifications_accepted_total",
            "gateway_publish_failures_total",
            "gateway_outbox_backlog",
        ):
            assert name in metrics
        assert 'route="/recipients"' in metrics


class TestWithCurl:
    def test_put_and_post_with_curl(self, gateway: GatewayProcess) -> None:
        name = unique("curl")
        put = gateway.curl(
            "-X", "PUT", f"{gateway.base_url}/recipients/{name}", "-H", "Content-Type: application/json",
            "-d", json.dumps({"email": "curl@example.com"}), "-w", "%{http_code}",
        )
        assert put.returncode == 0, put.stderr
        assert put.stdout == "204"
        post = gateway.curl(
            "-X", "POST", f"{gateway.base_url}/notifications", "-H", "Content-Type: application/json",
            "-d", json.dumps({"recipient": name, "message": "from curl"}), "-w", "\n%{http_code}",
        )
        body, status = post.stdout.rsplit("\n", 1)
        assert status == "201"
        assert json.loads(body)["channels"] == ["email"]
