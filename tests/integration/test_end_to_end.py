"""From a client's POST to the provider, through every real piece.

The gateway and the three senders run as processes on an AWS emulator, real Postgres and
WireMock standing in for Slack. Every test runs twice: on moto, and on LocalStack, the emulator
the Docker setup uses. What arrives is checked where it lands (the emulator's sent SMS and emails,
WireMock's journal), and the status the client reads back from the gateway.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

import pytest

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
        done = [d for d in current["deliveries"].values() if d["status"] == "sent"]
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
