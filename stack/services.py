"""Our own services: each run as ``python -m <module>``, configured by its own settings class."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from callback_sender.settings import CallbackSenderSettings
from gateway.settings import GatewaySettings
from sender_email.settings import EmailSenderSettings
from sender_slack.settings import SlackSenderSettings
from sender_sms.settings import SmsSenderSettings
from shared.settings import ServerSettings


@dataclass(frozen=True)
class Service:
    """One of our services: its module and the settings class it reads."""

    module: str
    settings_cls: type[ServerSettings]
    # Who usually holds its ops port when it is taken: an earlier run of ours.
    role: str

    @property
    def settings(self) -> Any:
        """The service's settings as it will read them (this environment and .env)."""
        return self.settings_cls()


GATEWAY = Service("gateway", GatewaySettings, "an earlier `make up`")
SENDERS = (
    Service("sender_sms", SmsSenderSettings, "an earlier `make up` (the SMS sender)"),
    Service("sender_email", EmailSenderSettings, "an earlier `make up` (the email sender)"),
    Service("sender_slack", SlackSenderSettings, "an earlier `make up` (the Slack sender)"),
)
# Each sender by the channel it delivers on.
SENDER_BY_CHANNEL = {service.settings_cls.channel: service for service in SENDERS}  # type: ignore[attr-defined]
CALLBACK_SENDER = Service("callback_sender", CallbackSenderSettings, "an earlier `make up` (the callback sender)")
