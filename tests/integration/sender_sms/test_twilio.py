"""TwilioProvider against a real WireMock playing Twilio (the stack's mapping and Twilio's real error bodies).

Each test sends to a number of its own, so the shared journal tells its requests apart.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from harness.twilio import Twilio, twilio_error, twilio_server_error
from sender_sms.settings import SmsSenderSettings
from sender_sms.twilio import TwilioProvider
from shared.messages import NotificationMessage, RecipientSnapshot
from shared.providers import PermanentSendError, ProviderAccountError, SendError, SendResult, TransientSendError
from shared.topology import Channel
from stack.network import free_port
from stack.wiremock_server import WireMock

pytestmark = pytest.mark.timeout(120)
ACCOUNT = "AC" + "1f" * 16
_numbers = itertools.count(14155550200)


@pytest.fixture(scope="module")
def twilio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twilio]:
    server = WireMock(free_port(), log_path=tmp_path_factory.mktemp("wiremock") / "wiremock.log").start()
    yield Twilio(server)
    server.stop()


@pytest.fixture(autouse=True)
def _stack_mappings(twilio: Twilio) -> None:
    twilio.wiremock.reset_mappings()


def settings(twilio: Twilio, **overrides: str) -> SmsSenderSettings:
    values = {
        "twilio_base_url": twilio.wiremock.base_url,
        "twilio_account_sid": ACCOUNT,
        "twilio_auth_token": "token-of-the-test",
        "twilio_from": "+15005550006",
        "providers": "sns,twilio",
        **overrides,
    }
    return SmsSenderSettings(**values)  # type: ignore[arg-type]


def message(phone_number: str, text: str = "Your code is 4321 - don't share it & smile") -> NotificationMessage:
    return NotificationMessage(
        notification_id=uuid.uuid4(),
        recipient=RecipientSnapshot(name="ada", phone_number=phone_number),
        message=text,
        channels=[Channel.SMS],
        client="billing",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def send(provider_settings: SmsSenderSettings, notification: NotificationMessage) -> SendResult | SendError:
    async def run() -> SendResult | SendError:
        async with TwilioProvider(provider_settings) as provider:
            try:
                return await provider.send(notification)
            except SendError as exc:
                return exc

    return asyncio.run(run())


def number() -> str:
    return f"+{next(_numbers)}"


class TestSuccess:
    def test_the_exact_form_fields_and_basic_auth_and_the_sid_back(self, twilio: Twilio) -> None:
        to = number()
        result = send(settings(twilio), message(to))
        assert isinstance(result, SendResult)
        [request] = twilio.messages(to=to)
        assert {key: request[key] for key in ("To", "From", "Body", "account")} == {
            "To": to,
            "From": "+15005550006",
            "Body": "Your code is 4321 - don't share it & smile",
            "account": ACCOUNT,
        }
        assert set(request) - {"account", "authorization", "timestamp", "status"} == {"To", "From", "Body"}
        assert request["status"] == 201
        assert request["authorization"] == "Basic " + base64.b64encode(f"{ACCOUNT}:token-of-the-test".encode()).decode()
        assert result.provider_message_id is not None and result.provider_message_id.startswith("SM")
        assert len(result.provider_message_id) == 34

    def test_a_messaging_service_sender_goes_as_messaging_service_sid(self, twilio: Twilio) -> None:
        to = number()
        result = send(settings(twilio, twilio_from="MG" + "2e" * 16), message(to))
        assert isinstance(result, SendResult)
        [request] = twilio.messages(to=to)
        assert request["MessagingServiceSid"] == "MG" + "2e" * 16 and "From" not in request


class TestErrors:
    @pytest.mark.parametrize(
        ("response", "kind", "code"),
        [
            (twilio_error(21211), PermanentSendError, "twilio_21211"),
            (twilio_error(21610), PermanentSendError, "twilio_21610"),
            (twilio_error(20429, headers={"Retry-After": "3"}), TransientSendError, "too_many_requests"),
            (twilio_server_error(503), TransientSendError, "server_error"),
            (twilio_server_error(500), TransientSendError, "server_error"),
            (twilio_error(20003), ProviderAccountError, "twilio_20003"),
            (twilio_error(20005, status=403), ProviderAccountError, "twilio_20005"),
        ],
        ids=["21211-invalid-number", "21610-unsubscribed", "20429-too-many", "503", "500", "20003-auth", "20005-suspended"],
    )
    def test_classified(self, twilio: Twilio, response: dict, kind: type[SendError], code: str) -> None:
        to = number()
        twilio.answer_to(to, response)
        error = send(settings(twilio), message(to))
        assert type(error) is kind
        assert error.code == code
        if code == "too_many_requests":
            assert isinstance(error, TransientSendError) and error.retry_after == 3
        if kind is not TransientSendError:
            assert str(response["jsonBody"]["code"]) in error.reason and response["jsonBody"]["message"] in error.reason

    def test_wrong_credentials_at_the_stack_mapping_are_an_account_error(self, twilio: Twilio) -> None:
        error = send(settings(twilio, twilio_account_sid="not-a-sid"), message(number()))
        assert isinstance(error, ProviderAccountError) and error.code == "twilio_20003"

    def test_twilio_unreachable_is_transient(self, twilio: Twilio) -> None:
        error = send(settings(twilio, twilio_base_url=f"http://127.0.0.1:{free_port()}"), message(number()))
        assert isinstance(error, TransientSendError) and error.code == "connection_error"
