"""How many replicas of each sender a rate needs, and the autoscaling bounds Terraform allows.

Defined once: ``notifyctl capacity --plan`` and ``notifyctl scale`` use this module, and
``tests/infra/test_terraform_capacity.py`` checks Terraform against it (the validation of the
``senders`` variable against ``TASK_BOUNDS``, its default ``target_backlog_per_task`` and ``cpu``
against ``DEFAULT_INPUTS``), as ``tests/infra/test_terraform_topology.py`` does for the topology.

One replica of a sender, per second, delivers at most the least of:

- **concurrency / latency** (Little's law): ``concurrency`` messages in flight, each holding its slot
  for the provider's mean latency. Measured, a replica reaches ``efficiency`` of that bound (slots
  stand empty between a send ending and ReceiveMessage filling them again);
- **its CPU**: ``max_cpu`` of the task's ``task_vcpu``, at ``cpu_ms_per_message`` each;

and the channel as a whole no more than its provider allows per account: SNS SMS and SES have
quotas (the senders' ``RATE_LIMIT_PER_SECOND`` defaults). Their senders share one bucket among
their replicas (``RATE_LIMIT_SHARED``, ``shared/provider_rate_limit.py``), so the setting is the
quota whatever the replicas; a sender whose limit is per process must give each replica its share,
or together they exceed the quota, get throttled, and spend the messages' five receives on
retries. Slack limits each Slack channel (about 1/s), not the total.

The defaults are measured figures: ``bench/sender.py`` (Slack sender on LocalStack, concurrency 32,
a Slack that answers in 200 ms) delivered 141.8 messages/s, 0.89 of the 160/s bound, at 2.03 CPU ms
per message. The latencies are that benchmark's 200 ms for every provider: replace them with your
own mean of ``sender_send_duration_seconds`` (its ``_sum`` rate over its ``_count`` rate).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from sender_email.settings import EmailSenderSettings
from sender_slack.settings import SlackSenderSettings
from sender_sms.settings import SmsSenderSettings
from shared.sender_settings import SenderSettings
from shared.topology import Channel

SETTINGS: dict[Channel, type[SenderSettings]] = {
    Channel.SMS: SmsSenderSettings,
    Channel.EMAIL: EmailSenderSettings,
    Channel.SLACK: SlackSenderSettings,
}

# Channels whose provider limits each recipient (a Slack channel), not the account's total.
PER_RECIPIENT_LIMIT: frozenset[Channel] = frozenset({Channel.SLACK})


@dataclass(frozen=True)
class TaskBounds:
    """What Terraform's ``senders`` variable allows for ``min_tasks`` and ``max_tasks``.

    At least one task: the scaling metric divides the queue's backlog by the running tasks, so a
    service at zero would never scale out again. At most 50: a guard against a mistyped bound; each
    sender task holds up to ``DATABASE_POOL_SIZE`` (10) Postgres connections, so 50 tasks of one
    channel are 500 connections, beyond what most RDS instance classes allow by default.
    """

    floor: int = 1
    ceiling: int = 50

    def problem(self, min_tasks: int, max_tasks: int) -> str | None:
        """Why (min_tasks, max_tasks) is refused, or None when Terraform would accept it."""
        if min_tasks < self.floor:
            return f"--min must be at least {self.floor} (the scaling metric divides by the running tasks), got {min_tasks}"
        if max_tasks > self.ceiling:
            return f"--max must be at most {self.ceiling} (Terraform's limit for a sender), got {max_tasks}"
        if max_tasks < min_tasks:
            return f"--max ({max_tasks}) must not be below --min ({min_tasks})"
        return None


TASK_BOUNDS = TaskBounds()


def shared_rate_limit(channel: Channel) -> bool:
    """Whether the channel's sender shares its rate limit among its replicas by default."""
    return bool(SETTINGS[channel].model_fields["rate_limit_shared"].default)


def _rate_limit_default(channel: Channel) -> float:
    return float(SETTINGS[channel].model_fields["rate_limit_per_second"].default)


@dataclass(frozen=True)
class CapacityInputs:
    latency_seconds: Mapping[Channel, float] = field(default_factory=lambda: dict.fromkeys(Channel, 0.2))
    # Per account and second; None where the provider limits each recipient instead (Slack).
    provider_limit_per_second: Mapping[Channel, float | None] = field(
        default_factory=lambda: {c: None if c in PER_RECIPIENT_LIMIT else _rate_limit_default(c) for c in Channel}
    )
    concurrency: int = field(default_factory=lambda: int(SenderSettings.model_fields["concurrency"].default))
    efficiency: float = 0.89
    cpu_ms_per_message: float = 2.03
    # Terraform's default sender task: cpu = 256 units (1024 = 1 vCPU).
    task_vcpu: float = 0.25
    max_cpu: float = 0.75
    # How long a message may wait in the queue while the channel is at its scaling target.
    target_delay_seconds: float = 10.0

    def problems(self) -> list[str]:
        problems = [f"latency of {c.value} must be positive" for c, value in self.latency_seconds.items() if value <= 0]
        problems += [f"provider limit of {c.value} must be positive" for c, v in self.provider_limit_per_second.items() if v is not None and v <= 0]
        for name in ("concurrency", "cpu_ms_per_message", "task_vcpu", "target_delay_seconds"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive")
        for name in ("efficiency", "max_cpu"):
            if not 0 < getattr(self, name) <= 1:
                problems.append(f"{name} must be above 0 and at most 1")
        return problems


DEFAULT_INPUTS = CapacityInputs()


@dataclass(frozen=True)
class ChannelPlan:
    channel: str
    rate_per_second: float
    latency_seconds: float
    # One replica: Little's law's bound, what efficiency makes of it, what the CPU allows.
    concurrency_bound_per_second: float
    cpu_bound_per_second: float
    replica_capacity_per_second: float
    limited_by: str  # "concurrency / latency" or "CPU"
    provider_limit_per_second: float | None
    provider_limit_scope: str  # "account" or "each recipient"
    replicas: int
    within_provider_limit: bool
    # The channel's provider limit shared out among the replicas: what each sends at most.
    rate_limit_per_replica: float | None
    # Whether the replicas share one bucket (RATE_LIMIT_SHARED), and what to set
    # *_SENDER_RATE_LIMIT_PER_SECOND to: the quota when shared, each replica's share when not.
    rate_limit_shared: bool
    rate_limit_setting: float | None
    # Beyond this many replicas the provider's limit binds, not the replicas.
    most_useful_replicas: int | None
    target_backlog_per_task: int


def replica_capacity(channel: Channel, inputs: CapacityInputs = DEFAULT_INPUTS) -> tuple[float, str]:
    """Messages per second one replica delivers, and what bounds it."""
    concurrency_bound = inputs.efficiency * inputs.concurrency / inputs.latency_seconds[channel]
    cpu_bound = inputs.max_cpu * inputs.task_vcpu / (inputs.cpu_ms_per_message / 1000)
    return (concurrency_bound, "concurrency / latency") if concurrency_bound <= cpu_bound else (cpu_bound, "CPU")


def target_backlog_per_task(channel: Channel, inputs: CapacityInputs = DEFAULT_INPUTS, *, replicas: int = 1) -> int:
    """Terraform's ``target_backlog_per_task``: what one task sends in ``target_delay_seconds``.

    Target tracking holds the visible messages per running task near this, so a message waits about
    ``target_delay_seconds``. One task sends at its capacity, or at its share of the channel's
    provider limit when that is lower (with one replica, the whole quota: the senders' default).
    """
    capacity, _ = replica_capacity(channel, inputs)
    limit = inputs.provider_limit_per_second[channel]
    per_task = capacity if limit is None else min(capacity, limit / replicas)
    return math.floor(per_task * inputs.target_delay_seconds + 1e-9)


def most_useful_replicas(channel: Channel, inputs: CapacityInputs = DEFAULT_INPUTS) -> int | None:
    """Replicas that together reach the channel's per-account limit; more would only be throttled.

    None where the provider limits each recipient and not the total (Slack).
    """
    limit = inputs.provider_limit_per_second[channel]
    if limit is None:
        return None
    capacity, _ = replica_capacity(channel, inputs)
    return max(1, math.ceil(limit / capacity - 1e-9))


def plan(rate_per_second: float, inputs: CapacityInputs = DEFAULT_INPUTS) -> list[ChannelPlan]:
    """Per channel, the replicas that deliver ``rate_per_second`` (each notification on every channel)."""
    plans = []
    for channel in Channel:
        capacity, limited_by = replica_capacity(channel, inputs)
        limit = inputs.provider_limit_per_second[channel]
        # A float a hair above a whole number of replicas is that number (10 / 5.0000001).
        replicas = max(1, math.ceil(rate_per_second / capacity - 1e-9))
        plans.append(
            ChannelPlan(
                channel=channel.value,
                rate_per_second=rate_per_second,
                latency_seconds=inputs.latency_seconds[channel],
                concurrency_bound_per_second=inputs.concurrency / inputs.latency_seconds[channel],
                cpu_bound_per_second=inputs.max_cpu * inputs.task_vcpu / (inputs.cpu_ms_per_message / 1000),
                replica_capacity_per_second=capacity,
                limited_by=limited_by,
                provider_limit_per_second=limit if limit is not None else _rate_limit_default(channel),
                provider_limit_scope="each recipient" if limit is None else "account",
                replicas=replicas,
                within_provider_limit=limit is None or rate_per_second <= limit + 1e-9,
                rate_limit_per_replica=None if limit is None else limit / replicas,
                rate_limit_shared=shared_rate_limit(channel),
                rate_limit_setting=None if limit is None else limit if shared_rate_limit(channel) else limit / replicas,
                most_useful_replicas=most_useful_replicas(channel, inputs),
                target_backlog_per_task=target_backlog_per_task(channel, inputs, replicas=replicas),
            )
        )
    return plans
