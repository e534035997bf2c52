"""``python -m sender_sms``: run the SMS sender."""

from __future__ import annotations

from collections.abc import Callable

import shared.lean_process  # noqa: F401 - first, before the libraries it keeps lean
from shared.failover import NamedProvider
from shared.providers import Provider
from shared.sender_service import run_sender

from sender_sms.provider import SmsProvider
from sender_sms.settings import SmsSenderSettings
from sender_sms.twilio import TwilioProvider

PROVIDERS: dict[str, Callable[[SmsSenderSettings], Provider]] = {"sns": SmsProvider, "twilio": TwilioProvider}


def providers(settings: SmsSenderSettings) -> list[NamedProvider]:
    """SMS_SENDER_PROVIDERS, in its order."""
    return [NamedProvider(name, PROVIDERS[name](settings)) for name in settings.providers]


def main() -> int:
    settings = SmsSenderSettings()
    return run_sender(settings=settings, providers=providers(settings))


if __name__ == "__main__":
    raise SystemExit(main())
