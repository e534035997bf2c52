"""Our own services: each run as ``python -m <module>``, configured by its own settings class."""

from __future__ import annotations

from collections.abc import Mapping
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

# Replica n (from 2) of a sender listens on its ops port + (n - 1) x this: 9101, 9201 for the SMS
# sender's 9001, clear of the other services' defaults (9000 to 9004).
REPLICA_PORT_STEP = 100


@dataclass(frozen=True)
class Instance:
    """One process of a service that the local stack runs: its name (its log file's too) and ops port."""

    service: Service
    name: str
    ops_port: int
    replica: int = 1


def instances(services: list[Service], replicas: Mapping[str, int]) -> list[Instance]:
    """Each service's processes: ``replicas[channel]`` of a channel's sender (default one), one of
    the others. The first keeps the service's name and ops port; replica n is ``<module>-<n>``."""
    found = []
    for service in services:
        channel = getattr(service.settings_cls, "channel", None)
        count = replicas.get(channel, 1) if service in SENDERS else 1
        base = service.settings.ops_port
        for replica in range(1, count + 1):
            name = service.module if replica == 1 else f"{service.module}-{replica}"
            found.append(Instance(service, name, base + REPLICA_PORT_STEP * (replica - 1), replica))
    return found
