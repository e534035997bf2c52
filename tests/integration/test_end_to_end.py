"""From a client's POST to the provider, through every real piece.

The gateway and the three senders run as processes on an AWS emulator, real Postgres and
WireMock standing in for Slack. Every test runs twice: on moto, and on LocalStack, the emulator
the Docker setup uses. What arrives is checked where it lands (the emulator's sent SMS and emails,
WireMock's journal), and the status the client reads back from the gateway.
"""

from __future__ import annotations

import contextlib
import secrets
import time
import uuid
from collections.abc import Iterator

import pytest

from harness.ses_events import ses_bounce, ses_complaint, ses_delivery
from harness.sms_delivery_logs import sms_record
from harness.gateway import Certificates
from harness.postgres import PostgresServer
from harness.slack import slack_error
from harness.system import EmulatorStartError, System, started_system
from harness.waiting import wait_until
from shared.topology import Channel

pytestmark = pytest.mark.timeout(180)


@contextlib.contextmanager
def failing_loudly() -> Iterator[None]:
    """An emulator that cannot be installed or started fails the tests, saying why; never a skip,
    so that CI notices a lane that stopped running."""
    try:
        yield
    except EmulatorStartError as exc:
        raise pytest.fail.Exception(str(exc), pytrace=False) from None  # the reason once, not twice


@pytest.fixture(
    scope="module",
    params=[
        "moto",
        # The first test may install LocalStack (about a minute with uv, several without) before starting it.
        pytest.param("localstack", marks=pytest.mark.timeout(480)),
    ],
)
def system(
    request: pytest.FixtureRequest,
    postgres_server: PostgresServer,
    certificates: Certificates,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[System]:
    """On moto, the session's shared system; on LocalStack, one of this module's own."""
    if request.param == "moto":
        yield request.getfixturevalue("system")
        return
    with (
        failing_loudly(),
        started_system(
            postgres=postgres_server,
            certificates=certificates,
            log_dir=tmp_path_factory.mktemp(f"e2e-{request.param}-logs"),
            emulator=request.param,
            senders=(Channel.SMS, Channel.EMAIL, Channel.SLACK),
        ) as own,
    ):
        yield own


@pytest.fixture(autouse=True)
def _reset(system: System) -> None:
    system.reset()


def post(system: System, recipient: str, contacts: dict, **notification: object) -> dict:
    with system.gateway.client() as client:
        assert client.put(f"/recipients/{recipient}", json=contacts).status_code == 204
        response = client.post("/notifications", json={"recipient": recipient, **notification})
    assert response.status_code == 201, response.text
    return response.json()


def status(system: System, notification_id: str) -> dict:
    with system.gateway.client() as client:
        return client.get(f"/notifications/{notification_id}").json()


def wait_until_sent(system: System, notification_id: str, channels: int) -> dict:
    def all_sent() -> dict | None:
        current = status(system, notification_id)
        # On LocalStack, SES's own Delivery event may turn an email delivered soon after sent.
        done = [d for d in current["deliveries"].values() if d["status"] in ("sent", "delivered")]
        return current if len(done) == channels else None

    return wait_until(all_sent, timeout=60, what=f"{notification_id} sent on {channels} channel(s)")


class TestDelivery:
    def test_one_recipient_on_all_three_channels(self, system: System) -> None:
        text = f"Your order has shipped ({secrets.token_hex(4)})"
        created = post(
            system,
            "ada",
            {"phone_number": "+14155552671", "email": "ada@example.com", "slack_id": "U0ADA12345"},
            message=text,
            subject="Order update",
        )
        assert created["channels"] == ["sms", "email", "slack"]
        final = wait_until_sent(system, created["id"], 3)
        # Each channel's one provider by default, named on the delivery.
        assert {channel: d["provider"] for channel, d in final["deliveries"].items()} == {"sms": "sns", "email": "ses", "slack": "slack"}
        for delivery in final["deliveries"].values():
            assert delivery["attempts"] == 1
            assert delivery["provider_message_id"]
            assert delivery["sent_at"]
            assert delivery["last_error"] is None
        assert final["published"] is True

        sms = [m for m in system.aws.sent_sms() if m["message"] == text]
        assert [m["phone_number"] for m in sms] == ["+14155552671"]
        emails = [m for m in system.aws.sent_emails() if m["body"] == text]
        assert len(emails) == 1
        assert emails[0]["source"] == "sender@notifications.com"
        assert emails[0]["destination"] == ["ada@example.com"]
        assert emails[0]["subject"] == "Order update"
        posts = system.slack.posts(text=text)
        assert [(p["channel"], p["text"]) for p in posts] == [("U0ADA12345", text)]

    def test_two_recipients_by_email_with_the_default_subject(self, system: System) -> None:
        text = f"Maintenance tonight ({secrets.token_hex(4)})"
        ids = [
            post(system, name, {"email": f"{name}@example.com"}, message=text)["id"]
            for name in ("grace", "linus")
        ]
        for notification_id in ids:
            wait_until_sent(system, notification_id, 1)
        emails = sorted((m["destination"][0], m["subject"]) for m in system.aws.sent_emails() if m["body"] == text)
        assert emails == [("grace@example.com", "Notification"), ("linus@example.com", "Notification")]

    def test_only_the_requested_channel_is_used(self, system: System) -> None:
        text = f"Slack only ({secrets.token_hex(4)})"
        created = post(
            system, "barbara", {"phone_number": "+14155552672", "slack_id": "U0BAR12345"}, message=text, channels=["slack"]
        )
        wait_until_sent(system, created["id"], 1)
        assert len(system.slack.posts(text=text)) == 1
        assert not [m for m in system.aws.sent_sms() if m["message"] == text]

    def test_permanent_failure_is_visible_to_the_client(self, system: System) -> None:
        text = f"To a channel that is gone ({secrets.token_hex(4)})"
        system.slack.always("C0GONE1234", slack_error(200, {"ok": False, "error": "channel_not_found"}))
        created = post(system, "gone", {"slack_id": "C0GONE1234"}, message=text)

        def failed() -> dict | None:
            delivery = status(system, created["id"])["deliveries"]["slack"]
            return delivery if delivery["status"] == "failed" else None

        delivery = wait_until(failed, timeout=60, what="the delivery fails")
        assert "channel_not_found" in delivery["last_error"]
        assert delivery["attempts"] == 1


class TestTemplates:
    def test_a_template_send_reaches_each_provider_with_its_rendered_text(self, system: System) -> None:
        tag = secrets.token_hex(4)
        template = f"shipped-{tag}"
        with system.gateway.client() as client:
            response = client.put(
                f"/templates/{template}",
                json={
                    "sms": "Hi ((first name)), order ((order ref)) has shipped. " + tag,
                    "email": {"subject": "Order ((order ref)) shipped", "body": "Dear ((First_Name)),\n((items))\n" + tag},
                    "slack": "Order *((order ref))* for ((first name)) " + tag,
                },
            )
            assert response.status_code == 201, response.text
        created = post(
            system,
            f"ada-{tag}",
            {"phone_number": "+14155552671", "email": f"ada-{tag}@example.com", "slack_id": "U0ADA12345"},
            template=template,
            personalisation={"first-name": "Ada & <Bob>", "Order Ref": "A-1", "items": ["tea", "cake"]},
        )
        wait_until_sent(system, created["id"], 3)

        assert [m["phone_number"] for m in system.aws.sent_sms(f"Hi Ada & <Bob>, order A-1 has shipped. {tag}")] == ["+14155552671"]
        [email] = [m for m in system.aws.sent_emails() if m["destination"] == [f"ada-{tag}@example.com"]]
        assert (email["subject"], email["body"]) == ("Order A-1 shipped", f"Dear Ada & <Bob>,\ntea\ncake\n{tag}")
        posts = system.slack.posts(text=f"Order *A-1* for Ada &amp; &lt;Bob&gt; {tag}")
        assert [p["channel"] for p in posts] == ["U0ADA12345"]

    def test_a_template_edited_after_accepting_does_not_change_what_is_delivered(self, system: System) -> None:
        tag = secrets.token_hex(4)
        template = f"edited-{tag}"
        with system.gateway.client() as client:
            assert client.put(f"/templates/{template}", json={"slack": f"first version for ((name)) {tag}"}).status_code == 201
        created = post(system, f"eve-{tag}", {"slack_id": "U0EVE12345"}, template=template, personalisation={"name": "Eve"})
        with system.gateway.client() as client:
            assert client.put(f"/templates/{template}", json={"slack": f"second version for ((name)) {tag}"}).json()["version"] == 2
            assert client.delete(f"/templates/{template}").status_code == 204
        wait_until_sent(system, created["id"], 1)
        assert [p["text"] for p in system.slack.posts(channel="U0EVE12345") if tag in p["text"]] == [f"first version for Eve {tag}"]


# -- receipts and the suppression list --------------------------------------------------------
# SES events and SNS SMS delivery log records as AWS documents them: harness/ses_events.py,
# harness/sms_delivery_logs.py.


def sent_email(system: System, name: str) -> tuple[str, str, str]:
    """A new recipient's email, sent: (notification id, address, SES message id)."""
    address = f"{name}-{secrets.token_hex(4)}@example.com"
    created = post(system, f"{name}-{secrets.token_hex(4)}", {"email": address}, message=f"Hello {secrets.token_hex(4)}")
    delivery = wait_until_sent(system, created["id"], 1)["deliveries"]["email"]
    return created["id"], address, delivery["provider_message_id"]


def wait_for_delivery(system: System, notification_id: str, channel: str, check) -> dict:  # noqa: ANN001 - a predicate
    def settled() -> dict | None:
        delivery = status(system, notification_id)["deliveries"][channel]
        return delivery if check(delivery) else None

    return wait_until(settled, timeout=60, what=f"{notification_id}'s {channel} delivery as expected")


def suppressions(system: System, channel: str) -> dict[str, dict]:
    with system.gateway.client() as client:
        items, cursor = [], None
        while True:
            page = client.get("/suppressions", params={"channel": channel, "limit": 100, **({"cursor": cursor} if cursor else {})}).json()
            items += page["items"]
            if not (cursor := page.get("next_cursor")):
                return {item["address"]: item for item in items}


@pytest.fixture(scope="class")
def scripted_email_events(system: System) -> Iterator[None]:
    with system.aws.scripted_email_events():
        yield


class TestSesEvents:
    def test_every_email_sent_names_the_configuration_set_whose_events_reach_the_consumer(self, system: System) -> None:
        """On LocalStack, SES itself publishes a Delivery event for each email sent with the
        configuration set: SendEmail, the event destination, email_events and the consumer, with
        nothing scripted."""
        if system.emulator.name != "localstack":
            pytest.skip("moto's SES publishes no events; the scripted tests below run on it")
        text = f"Receipted by the emulator ({secrets.token_hex(4)})"
        created = post(system, f"ses-{secrets.token_hex(4)}", {"email": f"ses-{secrets.token_hex(4)}@example.com"}, message=text)
        delivery = wait_for_delivery(system, created["id"], "email", lambda d: d["status"] == "delivered")
        assert delivery["delivered_at"]
        assert [r["event"] for r in delivery["receipts"]] == ["Delivery"]


@pytest.mark.usefixtures("scripted_email_events")
class TestEmailReceipts:
    def test_delivery_turns_it_delivered_with_its_receipt(self, system: System) -> None:
        notification_id, address, message_id = sent_email(system, "delivered")
        system.aws.publish_email_event(ses_delivery(message_id, address))
        delivery = wait_for_delivery(system, notification_id, "email", lambda d: d["status"] == "delivered")
        assert delivery["delivered_at"].startswith("2016-10-19T23:21:04.133")
        [receipt] = delivery["receipts"]
        assert receipt["event"] == "Delivery"
        assert receipt["detail"]["smtpResponse"] == "250 2.6.0 Message received"

    def test_permanent_bounce_fails_it_and_suppresses_the_address_until_lifted(self, system: System) -> None:
        notification_id, address, message_id = sent_email(system, "bounced")
        system.aws.publish_email_event(ses_bounce(message_id, address))
        delivery = wait_for_delivery(system, notification_id, "email", lambda d: d["status"] == "failed")
        assert delivery["last_error"] == "bounced (Permanent/General): smtp; 550 5.1.1 user unknown"
        assert [(r["event"], r["type"], r["subtype"]) for r in delivery["receipts"]] == [("Bounce", "Permanent", "General")]
        suppression = suppressions(system, "email")[address]
        assert suppression["notification_id"] == notification_id
        assert suppression["reason"] == delivery["last_error"]

        # The next notification to the address, critical or not, is skipped and nothing is sent.
        recipient = f"bounced-again-{secrets.token_hex(4)}"
        text = f"Not for a bounced address ({secrets.token_hex(4)})"
        skipped = post(system, recipient, {"email": address}, message=text)
        skipped_delivery = status(system, skipped["id"])["deliveries"]["email"]
        assert skipped_delivery["status"] == "skipped"
        assert skipped_delivery["last_error"] == f"address suppressed: {delivery['last_error']}"

        with system.gateway.client() as client:
            assert client.delete(f"/suppressions/email/{address}").status_code == 204
            assert client.delete(f"/suppressions/email/{address}").status_code == 404
        assert address not in suppressions(system, "email")
        lifted = post(system, recipient, {"email": address}, message=text)
        wait_until_sent(system, lifted["id"], 1)
        assert len([m for m in system.aws.sent_emails() if m["body"] == text and m["destination"] == [address]]) == 1

    def test_transient_bounce_is_recorded_and_changes_nothing(self, system: System) -> None:
        notification_id, address, message_id = sent_email(system, "transient")
        system.aws.publish_email_event(ses_bounce(message_id, address, "Transient", "MailboxFull"))
        delivery = wait_for_delivery(system, notification_id, "email", lambda d: d["receipts"])
        assert delivery["status"] == "sent"
        assert delivery["last_error"] is None
        assert [(r["type"], r["subtype"]) for r in delivery["receipts"]] == [("Transient", "MailboxFull")]
        assert address not in suppressions(system, "email")

    def test_complaint_is_recorded_and_suppresses_the_address(self, system: System) -> None:
        notification_id, address, message_id = sent_email(system, "complaint")
        system.aws.publish_email_event(ses_delivery(message_id, address))
        system.aws.publish_email_event(ses_complaint(message_id, address))
        delivery = wait_for_delivery(system, notification_id, "email", lambda d: len(d["receipts"]) == 2)
        assert delivery["status"] == "delivered"
        assert sorted(r["event"] for r in delivery["receipts"]) == ["Complaint", "Delivery"]
        assert suppressions(system, "email")[address]["reason"] == "complaint (abuse)"

    def test_a_late_delivery_does_not_undo_failed_and_a_duplicate_is_kept_once(self, system: System) -> None:
        notification_id, address, message_id = sent_email(system, "late")
        bounce = ses_bounce(message_id, address)
        system.aws.publish_email_event(bounce)
        system.aws.publish_email_event(bounce)
        wait_for_delivery(system, notification_id, "email", lambda d: d["status"] == "failed")
        delivery_event = ses_delivery(message_id, address)
        system.aws.publish_email_event(delivery_event)
        system.aws.publish_email_event(delivery_event)
        delivery = wait_for_delivery(system, notification_id, "email", lambda d: any(r["event"] == "Delivery" for r in d["receipts"]))
        wait_until(lambda: system.aws.queue_depth("email_events") == 0, timeout=30, what="email_events drained")
        delivery = status(system, notification_id)["deliveries"]["email"]
        assert delivery["status"] == "failed"
        assert delivery["delivered_at"] is None
        assert sorted(r["event"] for r in delivery["receipts"]) == ["Bounce", "Delivery"]

    def test_an_event_before_sent_is_committed_is_applied_once_it_is(self, system: System) -> None:
        notification_id, address, message_id = sent_email(system, "early")
        # As if the sender's "sent" were not committed yet: the row does not have the message id.
        system.db.fetch("UPDATE deliveries SET provider_message_id = NULL WHERE notification_id = $1 AND channel = 'email'", uuid.UUID(notification_id))
        system.aws.publish_email_event(ses_delivery(message_id, address))
        wait_until(
            lambda: system.aws.queue_depth("email_events") == 1, timeout=30, what="the event left on the queue for another try"
        )
        assert status(system, notification_id)["deliveries"]["email"]["status"] == "sent"
        system.db.fetch(
            "UPDATE deliveries SET provider_message_id = $2 WHERE notification_id = $1 AND channel = 'email'",
            uuid.UUID(notification_id),
            message_id,
        )
        wait_for_delivery(system, notification_id, "email", lambda d: d["status"] == "delivered")


class TestSmsReceipts:
    def test_success_delivers_and_an_opted_out_failure_fails_and_suppresses(self, system: System) -> None:
        delivered = post(system, f"sms-ok-{secrets.token_hex(4)}", {"phone_number": "+14155552671"}, message=f"Hi {secrets.token_hex(4)}")
        failing_number = f"+1415555{secrets.randbelow(10_000):04d}"
        failed = post(system, f"sms-out-{secrets.token_hex(4)}", {"phone_number": failing_number}, message=f"Hi {secrets.token_hex(4)}")
        ok_id = wait_until_sent(system, delivered["id"], 1)["deliveries"]["sms"]["provider_message_id"]
        out_id = wait_until_sent(system, failed["id"], 1)["deliveries"]["sms"]["provider_message_id"]
        record = sms_record(ok_id, "+14155552671", "SUCCESS", "Message has been accepted by phone carrier")
        system.aws.write_sms_delivery_log(record)
        system.aws.write_sms_delivery_log(sms_record(out_id, failing_number, "FAILURE", "Phone is currently opted out"))

        ok = wait_for_delivery(system, delivered["id"], "sms", lambda d: d["status"] == "delivered")
        assert ok["delivered_at"].startswith("2016-06-28T00:40:34.558")
        assert [r["event"] for r in ok["receipts"]] == ["SUCCESS"]
        out = wait_for_delivery(system, failed["id"], "sms", lambda d: d["status"] == "failed")
        assert out["last_error"] == "carrier did not deliver it: Phone is currently opted out"
        assert suppressions(system, "sms")[failing_number]["reason"] == "opted out: Phone is currently opted out"
        # Every poll reads its overlap again (30 s in the tests, a poll each 0.5 s): still one receipt.
        time.sleep(2)
        assert len(status(system, delivered["id"])["deliveries"]["sms"]["receipts"]) == 1
        with system.gateway.client() as client:
            assert client.delete(f"/suppressions/sms/{failing_number}").status_code == 204

    def test_an_ordinary_failure_fails_it_without_suppressing(self, system: System) -> None:
        number = f"+1415555{secrets.randbelow(10_000):04d}"
        created = post(system, f"sms-fail-{secrets.token_hex(4)}", {"phone_number": number}, message=f"Hi {secrets.token_hex(4)}")
        message_id = wait_until_sent(system, created["id"], 1)["deliveries"]["sms"]["provider_message_id"]
        system.aws.write_sms_delivery_log(sms_record(message_id, number, "FAILURE", "Unknown error attempting to reach phone"))
        delivery = wait_for_delivery(system, created["id"], "sms", lambda d: d["status"] == "failed")
        assert delivery["last_error"] == "carrier did not deliver it: Unknown error attempting to reach phone"
        assert number not in suppressions(system, "sms")
