"""FailoverProvider's choice of provider per attempt and outcome, with scripted fake providers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from shared.circuit_breaker import BreakerPolicy, BreakerState
from shared.failover import FailoverProvider, NamedProvider, ProvidersUnavailable
from shared.messages import NotificationMessage, RecipientSnapshot
from shared.providers import PermanentSendError, Provider, ProviderAccountError, SendResult, TransientSendError
from shared.topology import Channel

POLICY = BreakerPolicy(failure_threshold=2, error_rate=0.5, window_seconds=60, minimum_calls=100, cooldown_seconds=30)


class Scripted(Provider):
    channel = Channel.SMS

    def __init__(self, name: str, outcome: Callable[[], Exception | None] = lambda: None) -> None:
        self.name = name
        self.outcome = outcome
        self.calls = 0

    async def send(self, message: NotificationMessage) -> SendResult:
        self.calls += 1
        error = self.outcome()
        if error is not None:
            raise error
        return SendResult(provider_message_id=f"{self.name}-{self.calls}")


def message() -> NotificationMessage:
    return NotificationMessage(
        notification_id=uuid.uuid4(),
        recipient=RecipientSnapshot(name="ada", phone_number="+14155552671"),
        message="code 1234",
        channels=[Channel.SMS],
        client="billing",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def failover(*providers: Scripted) -> FailoverProvider:
    return FailoverProvider([NamedProvider(p.name, p) for p in providers], policy=POLICY)


def sends(provider: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("sender_provider_sends_total", {"channel": "sms", "provider": provider, "outcome": outcome}) or 0.0


class TestChoice:
    async def test_the_first_provider_takes_the_first_attempt_and_the_result_names_it(self) -> None:
        primary, secondary = Scripted("primary"), Scripted("secondary")
        result = await failover(primary, secondary).send_attempt(message(), attempt=1)
        assert (result.provider, result.provider_message_id) == ("primary", "primary-1")
        assert (primary.calls, secondary.calls) == (1, 0)

    async def test_the_next_attempt_starts_at_the_next_provider_wrapping_round(self) -> None:
        primary, secondary = Scripted("primary"), Scripted("secondary")
        subject = failover(primary, secondary)
        assert (await subject.send_attempt(message(), attempt=2)).provider == "secondary"
        assert (await subject.send_attempt(message(), attempt=3)).provider == "primary"

    async def test_an_open_breaker_is_passed_over_until_its_probe(self) -> None:
        primary = Scripted("primary", lambda: TransientSendError("HTTP 503", code="server_error"))
        secondary = Scripted("secondary")
        subject = failover(primary, secondary)
        for _ in range(2):
            with pytest.raises(TransientSendError) as raised:
                await subject.send_attempt(message(), attempt=1)
            assert raised.value.provider == "primary"
        assert subject.breakers["primary"].state is BreakerState.OPEN
        assert (await subject.send_attempt(message(), attempt=1)).provider == "secondary"
        assert primary.calls == 2
        assert REGISTRY.get_sample_value(
            "sender_provider_breaker_state", {"channel": "sms", "provider": "primary", "sender_provider_breaker_state": "open"}
        ) == 1.0


class TestOutcomes:
    async def test_a_permanent_failure_does_not_fail_over(self) -> None:
        primary = Scripted("primary", lambda: PermanentSendError("Twilio error 21211: invalid To", code="twilio_21211"))
        secondary = Scripted("secondary")
        subject = failover(primary, secondary)
        with pytest.raises(PermanentSendError) as raised:
            await subject.send_attempt(message(), attempt=1)
        assert raised.value.provider == "primary"
        assert secondary.calls == 0
        assert subject.breakers["primary"].state is BreakerState.CLOSED

    async def test_an_account_failure_opens_the_breaker_and_fails_over_in_the_same_attempt(self) -> None:
        primary = Scripted("primary", lambda: ProviderAccountError("InvalidClientTokenId: bad key", code="invalid_client_token_id"))
        secondary = Scripted("secondary")
        subject = failover(primary, secondary)
        before = sends("primary", "account")
        assert (await subject.send_attempt(message(), attempt=1)).provider == "secondary"
        assert subject.breakers["primary"].state is BreakerState.OPEN
        assert sends("primary", "account") - before == 1

    async def test_account_failures_everywhere_are_raised_transient(self) -> None:
        subject = failover(Scripted("primary", lambda: ProviderAccountError("denied", code="access_denied")))
        with pytest.raises(ProviderAccountError):
            await subject.send_attempt(message(), attempt=1)
        with pytest.raises(ProvidersUnavailable) as raised:
            await subject.send_attempt(message(), attempt=1)
        assert raised.value.retry_after == pytest.approx(30, abs=1)
        assert subject.seconds_until_available() == pytest.approx(30, abs=1)

    async def test_a_transient_failure_is_not_retried_on_the_next_provider_at_once(self) -> None:
        primary = Scripted("primary", lambda: TransientSendError("timeout", code="timeout"))
        secondary = Scripted("secondary")
        with pytest.raises(TransientSendError):
            await failover(primary, secondary).send_attempt(message(), attempt=1)
        assert secondary.calls == 0, "a timeout may have sent it: the redelivery is the retry"
