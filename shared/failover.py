"""A channel's providers in order, each behind its circuit breaker: which one a send goes to.

Every sender runs its providers through :class:`FailoverProvider`, one provider (today's
default) or several (``SMS_SENDER_PROVIDERS=sns,twilio``). For one attempt at a message:

- The providers are tried from the first in the settings' order, except that attempt *n* starts
  at the *n*-th provider (wrapping round): a message whose previous attempt failed transiently
  goes to the next provider even while the first one's breaker is still closed.
- A provider whose breaker is open is passed over (``shared/circuit_breaker.py``); a half-open
  one takes one probe at a time.
- **Sent**: the result names the provider; the breaker counts a success.
- **Permanent failure** (invalid number, unsubscribed): raised as it is, with no failover:
  another provider would fail the same way. The provider answered, so its breaker counts a success.
- **Account failure** (authentication, suspended account): logged as an error, the provider's
  breaker opens at once and the *same attempt* goes on to the next provider, since the provider
  never took the message.
- **Transient failure** (5xx, throttling, timeout): the breaker counts a failure and the error
  is raised; the consumer's redelivery (with back-off) is the retry, on the next provider. Not
  tried again at once: a timeout may have sent the message, and the claim bounds that to one
  more send per attempt, not one per provider.
- **Every breaker open**: :class:`ProvidersUnavailable`. Before that happens, the consumer asks
  :meth:`FailoverProvider.seconds_until_available` and pauses receiving instead
  (``shared/consumer.py``), so an outage does not use up the messages' receives; while no
  breaker is closed it receives one message at a time (:meth:`FailoverProvider.probing_only`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace

from shared.circuit_breaker import BreakerPolicy, BreakerState, CircuitBreaker
from shared.logging import get_logger
from shared.messages import NotificationMessage
from shared.providers import PermanentSendError, Provider, ProviderAccountError, SendError, SendResult, TransientSendError
from shared.sender_metrics import PROVIDER_BREAKER_STATE, PROVIDER_SENDS

log = get_logger(__name__)


# The outcomes sender_provider_sends_total counts.
OUTCOMES = ("sent", "transient", "permanent", "account")


class ProvidersUnavailable(TransientSendError):
    """Every provider of the channel has its breaker open."""


@dataclass
class NamedProvider:
    name: str  # as in the settings' list: "sns", "twilio", "ses"
    provider: Provider


class FailoverProvider(Provider):
    def __init__(self, providers: Sequence[NamedProvider], *, policy: BreakerPolicy) -> None:
        if not providers:
            raise ValueError("a channel needs at least one provider")
        self._providers = list(providers)
        self.channel = self._providers[0].provider.channel  # type: ignore[misc]
        self.breakers = {entry.name: CircuitBreaker(policy) for entry in self._providers}
        for entry in self._providers:
            self._show(entry.name)
            for outcome in OUTCOMES:
                PROVIDER_SENDS.labels(self.channel.value, entry.name, outcome)  # exported from 0, for rate()

    @property
    def names(self) -> list[str]:
        return [entry.name for entry in self._providers]

    async def open(self) -> None:
        for entry in self._providers:
            await entry.provider.open()

    async def close(self) -> None:
        for entry in reversed(self._providers):
            await entry.provider.close()

    def rate_limit_key(self, message: NotificationMessage) -> str:
        return self._providers[0].provider.rate_limit_key(message)

    def seconds_until_available(self) -> float:
        """0 while some provider may be called; else how long until the first probe may be."""
        for entry in self._providers:
            self._show(entry.name)  # open becomes half-open with time, not with a call
        return min(self.breakers[entry.name].seconds_until_call() for entry in self._providers)

    def seconds_until_each_may_probe(self) -> float:
        """While every provider is unavailable: until the last of them may take a probe; else 0."""
        waits = [self.breakers[entry.name].seconds_until_call() for entry in self._providers]
        return max(waits) if min(waits) > 0 else 0.0

    def probing_only(self) -> bool:
        """No breaker is closed: every call is a probe, so the consumer takes one message at a
        time (each receive counts towards a message's five)."""
        return all(breaker.state is not BreakerState.CLOSED for breaker in self.breakers.values())

    async def send(self, message: NotificationMessage) -> SendResult:
        return await self.send_attempt(message, attempt=1)

    async def send_attempt(self, message: NotificationMessage, *, attempt: int) -> SendResult:
        start = (max(attempt, 1) - 1) % len(self._providers)
        account_errors: list[SendError] = []
        for entry in self._providers[start:] + self._providers[:start]:
            breaker = self.breakers[entry.name]
            if not breaker.acquire():
                continue
            try:
                result = await entry.provider.send(message)
            except ProviderAccountError as exc:
                breaker.trip()
                self._count(entry.name, "account")
                log.error("provider refused our account or configuration; failing over", provider=entry.name, reason=exc.reason)
                exc.provider = entry.name
                account_errors.append(exc)
                continue
            except PermanentSendError as exc:
                breaker.record_success()
                self._count(entry.name, "permanent")
                exc.provider = entry.name
                raise
            except SendError as exc:
                breaker.record_failure()
                self._count(entry.name, "transient")
                exc.provider = entry.name
                raise
            except (asyncio.CancelledError, Exception):
                # Cancelled by the send timeout (a failure of this provider) or at shutdown.
                breaker.record_failure()
                self._count(entry.name, "transient")
                raise
            finally:
                self._show(entry.name)
            breaker.record_success()
            self._count(entry.name, "sent")
            return replace(result, provider=entry.name)
        if account_errors:
            raise account_errors[-1]
        raise ProvidersUnavailable(
            f"every {self.channel.value} provider is unavailable (circuit breakers open: {', '.join(self.names)})",
            code="providers_unavailable",
            retry_after=self.seconds_until_available() or None,
        )

    def _count(self, name: str, outcome: str) -> None:
        PROVIDER_SENDS.labels(self.channel.value, name, outcome).inc()

    def _show(self, name: str) -> None:
        state: BreakerState = self.breakers[name].state
        PROVIDER_BREAKER_STATE.labels(self.channel.value, name).state(state.value)
