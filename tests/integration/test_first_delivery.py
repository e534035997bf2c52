"""Delivery "first" through the whole system: the gateway, real senders (SMS through Twilio played
by WireMock, with its real error answers; email through SES on moto) and Postgres's trigger moving
a notification from one channel to the next. What arrived is counted where it lands (WireMock's
journal, the emulator's sent emails)."""

from __future__ import annotations

import secrets

import pytest

from harness.senders import SenderProcess
from harness.system import System
from harness.twilio import Twilio, twilio_error
from harness.waiting import wait_until
from shared.topology import Channel

pytestmark = pytest.mark.timeout(240)
CONTACTS = {"phone_number": "+14155552671", "email": "first@example.com"}


@pytest.fixture(autouse=True)
def _reset(system: System) -> None:
    system.reset()


def twilio_sms_sender(system: System, *others: Channel) -> SenderProcess:
    """The SMS sender on Twilio (WireMock), beside ``others`` only."""
    system.senders.only(*others)
    return system.senders.start(Channel.SMS, PROVIDERS="twilio", TWILIO_BASE_URL=system.wiremock.base_url)


def post_first(system: System, text: str, channels: list[str]) -> dict:
    with system.gateway.client() as client:
        assert client.put("/recipients/first-one", json=CONTACTS).status_code == 204
        response = client.post(
            "/notifications", json={"recipient": "first-one", "message": text, "channels": channels, "delivery": "first"}
        )
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["delivery"], created["channels"]) == ("first", channels)
    return created


def status(system: System, notification_id: str) -> dict:
    with system.gateway.client() as client:
        return client.get(f"/notifications/{notification_id}").json()


def wait_for(system: System, notification_id: str, expected: dict[str, set[str]]) -> dict:
    def reached() -> dict | None:
        current = status(system, notification_id)
        statuses = {channel: d["status"] for channel, d in current["deliveries"].items()}
        return current if all(statuses[channel] in wanted for channel, wanted in expected.items()) else None

    return wait_until(reached, timeout=90, what=f"{notification_id} reaching {expected}")


class TestFirstChannelThatWorks:
    def test_an_invalid_number_at_twilio_falls_back_to_email(self, system: System) -> None:
        twilio = Twilio(system.wiremock)
        twilio.answer_every_message(twilio_error(21211))
        twilio_sms_sender(system, Channel.EMAIL, Channel.SLACK)
        text = f"Your code is {secrets.token_hex(3)}"
        created = post_first(system, text, ["sms", "email"])
        final = wait_for(system, created["id"], {"sms": {"failed"}, "email": {"sent", "delivered"}})
        assert final["delivered_by"] == "email"
        sms, email = final["deliveries"]["sms"], final["deliveries"]["email"]
        assert (sms["provider"], email["provider"]) == ("twilio", "ses")
        assert "21211" in sms["last_error"]
        assert len(twilio.messages(body=text)) == 1, "a permanent failure is not retried"
        assert len(system.aws.sent_emails(text)) == 1

    def test_sms_sent_cancels_email(self, system: System) -> None:
        twilio = Twilio(system.wiremock)
        twilio_sms_sender(system, Channel.EMAIL, Channel.SLACK)
        text = f"Your code is {secrets.token_hex(3)}"
        created = post_first(system, text, ["sms", "email"])
        assert status(system, created["id"])["deliveries"]["email"]["status"] in ("waiting", "cancelled")
        final = wait_for(system, created["id"], {"sms": {"sent"}, "email": {"cancelled"}})
        assert final["delivered_by"] == "sms"
        assert final["deliveries"]["email"]["last_error"] == "not needed: sms was sent"
        assert final["deliveries"]["email"]["attempts"] == 0
        assert len(twilio.messages(body=text)) == 1
        assert system.aws.sent_emails(text) == []

    def test_the_sms_sender_killed_after_its_failure_still_ends_with_exactly_one_email(self, system: System) -> None:
        twilio = Twilio(system.wiremock)
        twilio.answer_every_message(twilio_error(21211))
        # No email sender yet: the failure and the release of email are recorded, nothing sends it.
        sms_sender = twilio_sms_sender(system, Channel.SLACK)
        text = f"Your code is {secrets.token_hex(3)}"
        created = post_first(system, text, ["sms", "email"])
        wait_for(system, created["id"], {"sms": {"failed"}, "email": {"pending"}})
        sms_sender.process.kill()  # SIGKILL, right after the failure was recorded
        # The relay publishes email's outbox row (written by the trigger with the failure).
        wait_until(lambda: system.aws.queue_depth("email_notifications") >= 1, timeout=30, what="email's message in its queue")
        assert status(system, created["id"])["delivered_by"] is None
        system.senders.ensure(Channel.EMAIL)
        final = wait_for(system, created["id"], {"sms": {"failed"}, "email": {"sent", "delivered"}})
        assert final["delivered_by"] == "email"
        assert len(system.aws.sent_emails(text)) == 1
        assert len(twilio.messages(body=text)) == 1


class TestValidation:
    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"delivery": "first"}, 'delivery "first" needs channels: the channels to try, in order'),
            ({"delivery": "any", "channels": ["sms"]}, None),
        ],
    )
    def test_400s(self, system: System, body: dict, message: str | None) -> None:
        with system.gateway.client() as client:
            assert client.put("/recipients/first-one", json=CONTACTS).status_code == 204
            response = client.post("/notifications", json={"recipient": "first-one", "message": "hi", **body})
        assert response.status_code == 400, response.text
        if message is not None:
            assert response.json()["message"] == message  # the request as a whole: no one field is at fault
        else:
            assert response.json()["field"] == "delivery"

    def test_a_batch_item_takes_delivery_first(self, system: System) -> None:
        with system.gateway.client() as client:
            assert client.put("/recipients/first-one", json={"email": "first@example.com"}).status_code == 204
            item = {"recipient": "first-one", "message": f"batch {secrets.token_hex(3)}", "channels": ["sms", "email"], "delivery": "first"}
            response = client.post("/notifications/batch", json={"notifications": [item]})
        assert response.status_code == 200, response.text
        [result] = response.json()["results"]
        assert result["status"] == 201, result
        final = wait_for(system, result["id"], {"email": {"sent", "delivered"}})
        # No phone number: SMS is skipped over at accept, email goes at once.
        assert final["deliveries"]["sms"]["status"] == "skipped"
        assert final["deliveries"]["sms"]["last_error"] == "recipient has no sms contact"
        assert (final["delivery"], final["delivered_by"]) == ("first", "email")
