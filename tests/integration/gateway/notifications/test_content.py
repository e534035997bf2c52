"""POST /notifications by template, the channels' limits and the recipients' preferences, through
the real gateway process, Postgres and SNS on moto: what is answered, stored and published (the
channel queues are read where the senders would read them)."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import httpx
import pytest

from harness.aws import QueueReader
from harness.gateway import GatewayProcess
from harness.postgres import fetch

JANE = {"phone_number": "+14155552671", "email": "jane@example.com", "slack_id": "U0123456789"}
WELCOME = {
    "sms": "Hi ((name)), your code is ((code)).",
    "email": {"subject": "Welcome ((name))", "body": "Dear ((name)), your code is ((code))."},
    "slack": "Welcome *((name))*",
    "category": "onboarding",
}


def unique(name: str) -> str:
    return f"{name}-{secrets.token_hex(3)}"


def recipient(client: httpx.Client, contacts: dict[str, str] = JANE, preferences: dict[str, Any] | None = None) -> str:
    name = unique("jane")
    assert client.put(f"/recipients/{name}", json=contacts).status_code == 204
    if preferences is not None:
        assert client.put(f"/recipients/{name}/preferences", json=preferences).status_code == 204
    return name


def template(client: httpx.Client, body: dict[str, Any] = WELCOME) -> str:
    name = unique("welcome")
    assert client.put(f"/templates/{name}", json=body).status_code == 201
    return name


def send(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/notifications", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def refusal(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/notifications", json=body)
    assert response.status_code == 400, response.text
    return response.json()


def published(queues: QueueReader, notification_id: str, expected: int) -> dict[str, dict[str, Any]]:
    """The SNS messages the channel queues got, by queue: waits for ``expected``, then a moment for any more."""
    queues.wait_for(notification_id, queues=expected)
    queues.wait_for(notification_id, queues=expected + 1, timeout=1.5)
    return {queue: body for queue, body, _ in queues.seen[notification_id]}


class TestByTemplate:
    def test_rendered_per_channel_stored_published_and_shown(self, client: httpx.Client, queues: QueueReader, database_url: str) -> None:
        name, welcome = recipient(client), template(client)
        accepted = send(client, recipient=name, template=welcome, personalisation={"Name": "Jane", "code": 1234, "unused": "x"})
        assert accepted["template"] == {"name": welcome, "version": 1}
        assert (accepted["category"], accepted["channels"]) == ("onboarding", ["sms", "email", "slack"])
        assert (accepted["sms_fragments"], accepted["sms_encoding"]) == (1, "GSM-7")
        assert "message" not in accepted

        messages = published(queues, accepted["id"], 3)
        assert set(messages) == {"sms_notifications", "email_notifications", "slack_notifications"}
        for message in messages.values():
            assert "message" not in message
            assert message["content"] == {
                "sms": {"body": "Hi Jane, your code is 1234."},
                "email": {"subject": "Welcome Jane", "body": "Dear Jane, your code is 1234."},
                "slack": {"text": "Welcome *Jane*"},
            }
        status = client.get(f"/notifications/{accepted['id']}").json()
        assert status["template"] == {"name": welcome, "version": 1}
        assert status["content"]["sms"] == {"body": "Hi Jane, your code is 1234.", "fragments": 1, "encoding": "GSM-7"}
        assert status["content"]["email"]["subject"] == "Welcome Jane"
        [row] = fetch(database_url, "SELECT message, template, template_version, category FROM notifications WHERE id = $1", uuid.UUID(accepted["id"]))
        assert (row["message"], row["template"], row["template_version"], row["category"]) == (None, welcome, 1, "onboarding")

    def test_a_template_edited_or_deleted_later_changes_nothing_accepted(self, client: httpx.Client, queues: QueueReader) -> None:
        name, welcome = recipient(client, {"slack_id": "U0123456789"}), template(client)
        first = send(client, recipient=name, template=welcome, personalisation={"name": "Jane", "code": 1})
        assert client.put(f"/templates/{welcome}", json={**WELCOME, "slack": "Changed ((name))"}).json()["version"] == 2
        second = send(client, recipient=name, template=welcome, personalisation={"name": "Jane", "code": 1})
        pinned = send(client, recipient=name, template=welcome, template_version=1, personalisation={"name": "Jane", "code": 1})
        assert client.delete(f"/templates/{welcome}").status_code == 204
        assert published(queues, first["id"], 1)["slack_notifications"]["content"]["slack"]["text"] == "Welcome *Jane*"
        assert published(queues, second["id"], 1)["slack_notifications"]["content"]["slack"]["text"] == "Changed Jane"
        assert (second["template"]["version"], pinned["template"]["version"]) == (2, 1)
        assert published(queues, pinned["id"], 1)["slack_notifications"]["content"]["slack"]["text"] == "Welcome *Jane*"
        assert client.get(f"/notifications/{first['id']}").json()["content"]["slack"]["text"] == "Welcome *Jane*"
        # Deleted: later sends by that name (any version) are refused.
        for body in ({}, {"template_version": 1}):
            gone = refusal(client, recipient=name, template=welcome, personalisation={"name": "J", "code": 1}, **body)
            assert (gone["message"], gone["field"]) == (f"template not found: {welcome}", "template")

    def test_refusals(self, client: httpx.Client) -> None:
        name, welcome = recipient(client), template(client)
        sms_only = template(client, {"sms": "((x))"})
        cases = [
            ({"template": unique("nothing")}, "template not found: "),
            ({"template": welcome, "template_version": 9, "personalisation": {"name": "J", "code": 1}}, f"template {welcome} has no version 9; its latest is 1"),
            ({"template": welcome, "personalisation": {"code": 1}}, "Missing personalisation: name"),
            ({"template": welcome}, "Missing personalisation: name, code"),
            ({"template": sms_only, "personalisation": {"x": 1}, "channels": ["email"]}, f"template '{sms_only}' has no email content; its channels are: sms"),
            ({"template": welcome, "message": "hi"}, "give either message or template, not both"),
            ({"template": welcome, "subject": "S"}, "subject is for a message: a template has its own email subject"),
            ({"message": "hi", "personalisation": {"a": 1}}, "personalisation needs a template"),
            ({"message": "hi", "template_version": 1}, "template_version needs a template"),
        ]
        for body, message in cases:
            assert refusal(client, recipient=name, **body)["message"].startswith(message), body

    def test_idempotent_replays_of_a_template_send(self, client: httpx.Client) -> None:
        name, welcome = recipient(client), template(client)
        body = {"recipient": name, "template": welcome, "personalisation": {"name": "Jane", "code": 7}}
        headers = {"Idempotency-Key": unique("key")}
        first = client.post("/notifications", json=body, headers=headers)
        client.delete(f"/templates/{welcome}")
        again = client.post("/notifications", json=body, headers=headers)  # a replay, though the template is gone now
        assert (first.status_code, again.status_code, again.headers.get("Idempotent-Replayed")) == (201, 201, "true")
        assert again.json() == first.json()
        other = client.post("/notifications", json={**body, "personalisation": {"name": "Jane", "code": 8}}, headers=headers)
        assert other.status_code == 409


class TestLimits:
    def test_a_long_message_to_a_phone_is_refused_naming_sms(self, client: httpx.Client, database_url: str) -> None:
        name = recipient(client)
        text = f"{secrets.token_hex(4)} " + "x" * 1991
        body = refusal(client, recipient=name, message=text)
        assert body == {"message": "message too long for sms: 2,000 bytes as GSM-7 (14 fragments); SNS takes at most 1,600 bytes", "field": "message"}
        assert fetch(database_url, "SELECT count(*) AS n FROM notifications WHERE message = $1", text)[0]["n"] == 0

    def test_the_same_to_an_email_only_recipient_or_without_sms_is_accepted(self, client: httpx.Client) -> None:
        assert send(client, recipient=recipient(client, {"email": "e@example.com"}), message="x" * 2000)["channels"] == ["email"]
        accepted = send(client, recipient=recipient(client), message="x" * 2000, channels=["email", "slack"])
        assert "sms_fragments" not in accepted

    @pytest.mark.parametrize(
        ("text", "fragments", "encoding"),
        [("a" * 160, 1, "GSM-7"), ("a" * 161, 2, "GSM-7"), ("ж" * 70, 1, "UCS-2"), ("ж" * 71, 2, "UCS-2"),
         ("a" * 1600, 11, "GSM-7"), ("€" * 800, 11, "GSM-7"), ("ж" * 800, 12, "UCS-2")],
        ids=["160", "161", "70-ucs2", "71-ucs2", "1600-bytes-gsm7", "1600-bytes-extension", "1600-bytes-ucs2"],
    )
    def test_fragments_at_the_boundaries(self, client: httpx.Client, text: str, fragments: int, encoding: str) -> None:
        accepted = send(client, recipient=recipient(client, {"phone_number": "+14155552671"}), message=text)
        assert (accepted["sms_fragments"], accepted["sms_encoding"]) == (fragments, encoding)
        assert client.get(f"/notifications/{accepted['id']}").json()["sms_fragments"] == fragments

    @pytest.mark.parametrize(("text", "size"), [("a" * 1601, "1,601 bytes as GSM-7"), ("€" * 801, "1,602 bytes as GSM-7"), ("ж" * 801, "1,602 bytes as UCS-2")])
    def test_one_byte_over(self, client: httpx.Client, text: str, size: str) -> None:
        assert size in refusal(client, recipient=recipient(client, {"phone_number": "+14155552671"}), message=text)["message"]

    @pytest.mark.parametrize("subject", ["a\r\nBcc: x@example.com", "line\nbreak", "cr\ronly"])
    def test_a_subject_with_cr_or_lf(self, client: httpx.Client, subject: str) -> None:
        body = refusal(client, recipient=recipient(client), message="hi", subject=subject)
        assert (body["message"], body["field"]) == ("email subject must be one line, without CR or LF", "subject")


class TestPreferences:
    def test_stored_read_and_defaults(self, client: httpx.Client) -> None:
        name = recipient(client)
        everything_on = {"sms": True, "email": True, "slack": True}
        assert client.get(f"/recipients/{name}/preferences").json() == {"channels": everything_on, "categories": {}}
        prefs = {"channels": {"sms": False}, "categories": {"marketing": {"email": False}, "news": {"slack": True}}}
        assert client.put(f"/recipients/{name}/preferences", json=prefs).status_code == 204
        assert client.get(f"/recipients/{name}/preferences").json() == {
            "channels": {"sms": False, "email": True, "slack": True},
            "categories": {"marketing": {"sms": True, "email": False, "slack": True}, "news": everything_on},
        }
        # A PUT replaces; the recipient's own PUT leaves its preferences alone.
        assert client.put(f"/recipients/{name}", json=JANE).status_code == 204
        assert client.get(f"/recipients/{name}/preferences").json()["channels"]["sms"] is False
        assert client.put(f"/recipients/{name}/preferences", json={}).status_code == 204
        assert client.get(f"/recipients/{name}/preferences").json() == {"channels": everything_on, "categories": {}}

    def test_unknown_recipient_and_deleted_with_the_recipient(self, client: httpx.Client) -> None:
        nobody = unique("nobody")
        assert client.get(f"/recipients/{nobody}/preferences").status_code == 404
        assert client.put(f"/recipients/{nobody}/preferences", json={}).status_code == 404
        name = recipient(client, preferences={"channels": {"email": False}})
        client.delete(f"/recipients/{name}")
        client.put(f"/recipients/{name}", json=JANE)
        assert client.get(f"/recipients/{name}/preferences").json()["channels"]["email"] is True

    @pytest.mark.parametrize(
        "body", [{"channels": {"fax": False}}, {"channels": {"sms": "no"}}, {"categories": {"Bad Name": {}}}, {"quiet": 1}]
    )
    def test_invalid_preferences(self, client: httpx.Client, body: dict) -> None:
        assert client.put(f"/recipients/{recipient(client)}/preferences", json=body).status_code == 400

    def test_a_channel_turned_off_is_skipped_and_not_published(self, client: httpx.Client, queues: QueueReader) -> None:
        name = recipient(client, preferences={"channels": {"sms": False}})
        accepted = send(client, recipient=name, message="hello")
        assert accepted["channels"] == ["sms", "email", "slack"]
        assert set(published(queues, accepted["id"], 2)) == {"email_notifications", "slack_notifications"}
        deliveries = client.get(f"/notifications/{accepted['id']}").json()["deliveries"]
        assert (deliveries["sms"]["status"], deliveries["sms"]["last_error"]) == ("skipped", "recipient turned off sms")
        assert deliveries["email"]["status"] == "pending"

    def test_a_channel_turned_off_for_a_category(self, client: httpx.Client, queues: QueueReader) -> None:
        name = recipient(client, preferences={"categories": {"marketing": {"email": False, "slack": False}}})
        marketing = send(client, recipient=name, message="sale!", category="marketing")
        assert set(published(queues, marketing["id"], 1)) == {"sms_notifications"}
        deliveries = client.get(f"/notifications/{marketing['id']}").json()["deliveries"]
        assert deliveries["email"]["last_error"] == "recipient turned off email for marketing"
        assert deliveries["slack"]["status"] == "skipped"
        # By a template of that category, too; another category is sent everywhere.
        promo = template(client, {"email": {"subject": "Sale", "body": "For ((name))"}, "category": "marketing"})
        by_template = send(client, recipient=name, template=promo, personalisation={"name": "J"})
        assert client.get(f"/notifications/{by_template['id']}").json()["deliveries"]["email"]["status"] == "skipped"
        orders = send(client, recipient=name, message="shipped", category="orders")
        assert len(published(queues, orders["id"], 3)) == 3

    def test_every_channel_skipped_is_still_a_201(self, client: httpx.Client, database_url: str) -> None:
        name = recipient(client, preferences={"channels": {"sms": False, "email": False, "slack": False}})
        accepted = send(client, recipient=name, message="nobody will get this")
        status = client.get(f"/notifications/{accepted['id']}").json()
        assert {delivery["status"] for delivery in status["deliveries"].values()} == {"skipped"}
        assert fetch(database_url, "SELECT count(*) AS n FROM outbox WHERE notification_id = $1", uuid.UUID(accepted["id"]))[0]["n"] == 0

    def test_a_critical_category_is_delivered_anyway(self, client: httpx.Client, queues: QueueReader) -> None:
        name = recipient(client, preferences={"channels": {"sms": False, "email": False}, "categories": {"security": {"slack": False}}})
        reset = send(client, recipient=name, message="your reset code: 123456", category="security")
        assert len(published(queues, reset["id"], 3)) == 3
        assert {d["status"] for d in client.get(f"/notifications/{reset['id']}").json()["deliveries"].values()} == {"pending"}

    def test_the_recipients_role_is_enforced(self, gateway: GatewayProcess) -> None:
        with gateway.client() as client:
            name = recipient(client)
        with gateway.client("client-notifications") as other:
            assert other.get(f"/recipients/{name}/preferences").status_code == 403
            assert other.put(f"/recipients/{name}/preferences", json={}).status_code == 403
        with gateway.client("client-recipients") as allowed:
            assert allowed.put(f"/recipients/{name}/preferences", json={"channels": {"sms": False}}).status_code == 204


