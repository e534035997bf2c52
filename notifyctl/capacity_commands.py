"""``notifyctl capacity`` (what each channel has on AWS, or ``--plan RATE``: what it needs) and
``notifyctl scale CHANNEL --min N --max M`` (its autoscaling bounds).

They read the services' AWS settings (``AWS_ENDPOINT_URL``, ``AWS_REGION``, credentials) and
``NOTIFYCTL_ECS_CLUSTER`` / ``NOTIFYCTL_ECS_SERVICE_PREFIX`` (``notifyctl/capacity.py``);
``--plan`` is arithmetic only (``notifyctl/capacity_model.py``) and talks to nothing.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from notifyctl.aws_errors import translated_aws_errors
from notifyctl.capacity_model import DEFAULT_INPUTS, TASK_BOUNDS, CapacityInputs, ChannelPlan, plan
from notifyctl.errors import BadCommandLineError, FailedError
from notifyctl.output import JsonOption, emit, format_age, report_errors
from shared.topology import Channel

if TYPE_CHECKING:
    from notifyctl.capacity import ChannelCapacities, ChannelCapacity, ScaleResult

T = TypeVar("T")

NO_AGE_NOTE = (
    "no data: CloudWatch has no ApproximateAgeOfOldestMessage for the queue in the last 15 minutes "
    "(SQS publishes it every minute for an active queue; an emulator does not)"
)
PROVIDERS = {Channel.SMS: "SNS SMS", Channel.EMAIL: "SES", Channel.SLACK: "Slack"}


def _run(work: Callable[[ChannelCapacities], Awaitable[T]]) -> T:
    """Run ``work`` with the clients it needs, from the environment; AWS errors become exit codes."""
    from notifyctl.capacity import CapacitySettings, ChannelCapacities
    from shared.aws import aws_clients

    settings = CapacitySettings()

    async def main() -> T:
        services = ("sqs", "cloudwatch", "ecs", "application-autoscaling")
        async with aws_clients(settings, *services) as (sqs, cloudwatch, ecs, autoscaling):
            return await work(ChannelCapacities(settings=settings, sqs=sqs, cloudwatch=cloudwatch, ecs=ecs, autoscaling=autoscaling))

    with translated_aws_errors():
        return asyncio.run(main())


def _per_channel(values: list[str] | None, option: str) -> dict[Channel, float]:
    """``["sms=0.3", "slack=0.5"]`` as {Channel.SMS: 0.3, Channel.SLACK: 0.5}."""
    parsed = {}
    for value in values or []:
        name, _, number = value.partition("=")
        try:
            parsed[Channel(name.strip().lower())] = float(number)
        except ValueError:
            raise BadCommandLineError(f"{option} takes CHANNEL=NUMBER (channel sms, email or slack), got {value!r}") from None
    return parsed


@report_errors
def capacity(
    channel: Annotated[list[Channel] | None, typer.Option("--channel", help="Only this channel; repeatable.", case_sensitive=False)] = None,
    rate: Annotated[
        float | None,
        typer.Option("--plan", metavar="RATE", min=0.001, help="Do not ask AWS: compute the replicas each channel needs for RATE notifications/s, each on every channel."),
    ] = None,
    latency: Annotated[
        list[str] | None,
        typer.Option("--latency", metavar="CHANNEL=SECONDS", help="With --plan: the provider's mean latency (sender_send_duration_seconds) [default: 0.2 for each]."),
    ] = None,
    provider_limit: Annotated[
        list[str] | None,
        typer.Option("--provider-limit", metavar="CHANNEL=PER_SECOND", help="With --plan: the account's quota [default: sms=20 (SNS SMS), email=14 (SES); Slack limits each Slack channel to 1/s, no total]."),
    ] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, help=f"With --plan: messages in flight per replica [default: {DEFAULT_INPUTS.concurrency}].")] = None,
    efficiency: Annotated[float | None, typer.Option(help=f"With --plan: the share of concurrency / latency a replica reaches (bench/sender.py) [default: {DEFAULT_INPUTS.efficiency}].")] = None,
    cpu_ms: Annotated[float | None, typer.Option(help=f"With --plan: CPU milliseconds per message (bench/sender.py) [default: {DEFAULT_INPUTS.cpu_ms_per_message}].")] = None,
    task_vcpu: Annotated[float | None, typer.Option(help=f"With --plan: vCPUs of a sender task (Terraform's cpu / 1024) [default: {DEFAULT_INPUTS.task_vcpu}].")] = None,
    max_cpu: Annotated[float | None, typer.Option(help=f"With --plan: the share of its vCPU a replica may use [default: {DEFAULT_INPUTS.max_cpu}].")] = None,
    target_delay: Annotated[float | None, typer.Option(help=f"With --plan: seconds a message may wait at the scaling target [default: {DEFAULT_INPUTS.target_delay_seconds:g}].")] = None,
    as_json: JsonOption = False,
) -> None:
    """Per channel: queue depth, oldest message, ECS tasks and autoscaling bounds; or, with --plan RATE, the replicas RATE needs."""
    model_options = {
        "--latency": latency, "--provider-limit": provider_limit, "--concurrency": concurrency, "--efficiency": efficiency,
        "--cpu-ms": cpu_ms, "--task-vcpu": task_vcpu, "--max-cpu": max_cpu, "--target-delay": target_delay,
    }  # fmt: skip
    channels = list(dict.fromkeys(channel or Channel))
    if rate is None:
        if given := [name for name, value in model_options.items() if value is not None]:
            raise BadCommandLineError(f"{', '.join(given)}: only with --plan RATE")
        _show_capacity(channels, as_json=as_json)
        return
    inputs = _inputs(
        latency=_per_channel(latency, "--latency"),
        provider_limit=_per_channel(provider_limit, "--provider-limit"),
        concurrency=concurrency, efficiency=efficiency, cpu_ms=cpu_ms, task_vcpu=task_vcpu, max_cpu=max_cpu, target_delay=target_delay,
    )  # fmt: skip
    plans = [p for p in plan(rate, inputs) if Channel(p.channel) in channels]
    emit(
        {"rate_per_second": rate, "inputs": _inputs_as_dict(inputs), "channels": [asdict(p) for p in plans]},
        as_json=as_json,
        human=lambda _: _describe_plan(rate, inputs, plans),
    )
    if over := [p for p in plans if not p.within_provider_limit]:
        raise FailedError(
            "; ".join(f"{p.channel}: {rate:g}/s is above the provider's {p.provider_limit_per_second:g}/s" for p in over)
            + ": no number of replicas delivers it; ask for a higher quota, then plan with --provider-limit"
        )


@report_errors
def scale(
    channel: Annotated[Channel, typer.Argument(help="sms, email or slack.", case_sensitive=False)],
    min_tasks: Annotated[int | None, typer.Option("--min", help=f"Fewest tasks ({TASK_BOUNDS.floor} or more); unchanged if omitted.")] = None,
    max_tasks: Annotated[int | None, typer.Option("--max", help=f"Most tasks ({TASK_BOUNDS.ceiling} at most); unchanged if omitted.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Set a channel's autoscaling bounds (Application Auto Scaling), within what Terraform allows."""
    if min_tasks is None and max_tasks is None:
        raise BadCommandLineError("give --min, --max or both")
    # Refuse what no current value could make valid before asking AWS anything.
    if problem := TASK_BOUNDS.problem(
        TASK_BOUNDS.floor if min_tasks is None else min_tasks, TASK_BOUNDS.ceiling if max_tasks is None else max_tasks
    ):
        raise BadCommandLineError(f"refused, nothing changed: {problem}")
    result = _run(lambda capacities: capacities.scale(channel, min_tasks=min_tasks, max_tasks=max_tasks))
    emit(asdict(result), as_json=as_json, human=lambda _: _describe_scale(result))



def _show_capacity(channels: list[Channel], *, as_json: bool) -> None:
    capacities = _run(lambda c: c.read(channels))
    emit([asdict(c) for c in capacities], as_json=as_json, human=lambda _: _describe_capacity(capacities))
    if problems := [problem for c in capacities for problem in c.problems]:
        raise FailedError("; ".join(problems))


def _inputs(*, latency: dict[Channel, float], provider_limit: dict[Channel, float], **options: Any) -> CapacityInputs:
    names = {"cpu_ms": "cpu_ms_per_message", "target_delay": "target_delay_seconds"}
    inputs = replace(
        DEFAULT_INPUTS,
        latency_seconds={**DEFAULT_INPUTS.latency_seconds, **latency},
        provider_limit_per_second={**DEFAULT_INPUTS.provider_limit_per_second, **provider_limit},
        **{names.get(name, name): value for name, value in options.items() if value is not None},
    )
    if problems := inputs.problems():
        raise BadCommandLineError("; ".join(problems))
    return inputs


def _inputs_as_dict(inputs: CapacityInputs) -> dict[str, Any]:
    data = asdict(inputs)
    for key in ("latency_seconds", "provider_limit_per_second"):
        data[key] = {channel.value: value for channel, value in data[key].items()}
    return data


# ---------------------------------------------------------------- printing


def _describe_capacity(capacities: list[ChannelCapacity]) -> str:
    def number(value: int | None) -> str:
        return "?" if value is None else str(value)

    lines = [f"{'channel':<8}{'waiting':>9}{'in flight':>11}  {'oldest message':<16}{'tasks running/pending/desired':<31}{'bounds':<8}"]
    for c in capacities:
        age = "no data" if c.oldest_message_age_seconds is None else format_age(c.oldest_message_age_seconds)
        tasks = f"{number(c.running_tasks)}/{number(c.pending_tasks)}/{number(c.desired_tasks)}"
        bounds = "?" if c.min_tasks is None else f"{c.min_tasks}-{c.max_tasks}"
        lines.append(f"{c.channel:<8}{number(c.messages_waiting):>9}{number(c.messages_in_flight):>11}  {age:<16}{tasks:<31}{bounds:<8}")
    if any(c.oldest_message_age_seconds is None for c in capacities):
        lines.append(NO_AGE_NOTE)
    lines += [f"{c.channel}: {problem}" for c in capacities for problem in c.problems]
    return "\n".join(lines)


def _describe_plan(rate: float, inputs: CapacityInputs, plans: list[ChannelPlan]) -> str:
    lines = [
        f"Replicas for {rate:g} notifications/s, each on every channel. One replica: {inputs.efficiency:g} x concurrency "
        f"{inputs.concurrency} / latency, or {inputs.max_cpu:g} x {inputs.task_vcpu:g} vCPU / {inputs.cpu_ms_per_message:g} CPU ms "
        "per message, whichever is less.",
        f"{'channel':<8}{'latency':>9}  {'one replica':<34}{'provider limit':<26}{'replicas':>8}  {'rate limit each':<16}{'target backlog/task':>20}",
    ]
    notes = []
    for p in plans:
        scope = "account" if p.provider_limit_scope == "account" else "Slack channel"
        # Rounded down, so that the replicas together stay within the limit.
        share = None if p.rate_limit_per_replica is None else f"{math.floor(p.rate_limit_per_replica * 100) / 100:g}"
        each = "-" if share is None else f"{share}/s"
        setting = None if p.rate_limit_setting is None else f"{math.floor(p.rate_limit_setting * 100) / 100:g}"
        lines.append(
            f"{p.channel:<8}{p.latency_seconds * 1000:>7.0f}ms  {f'{p.replica_capacity_per_second:.1f}/s ({p.limited_by})':<34}"
            f"{f'{p.provider_limit_per_second:g}/s per {scope}':<26}{p.replicas:>8}  {each:<16}{p.target_backlog_per_task:>20}"
        )
        provider = PROVIDERS[Channel(p.channel)]
        if not p.within_provider_limit:
            notes.append(
                f"{p.channel}: {rate:g}/s is above {provider}'s {p.provider_limit_per_second:g}/s: no number of replicas delivers it. "
                f"Ask for a higher quota, then plan with --provider-limit {p.channel}=<it>."
            )
        elif p.rate_limit_shared and p.rate_limit_setting is not None:
            notes.append(
                f"{p.channel}: the replicas share one bucket ({p.channel.upper()}_SENDER_RATE_LIMIT_SHARED): "
                f"{p.channel.upper()}_SENDER_RATE_LIMIT_PER_SECOND={setting}, {provider}'s quota, whatever the replicas."
            )
        elif p.rate_limit_per_replica is not None and p.replicas > 1:
            notes.append(
                f"{p.channel}: give each of the {p.replicas} replicas {p.channel.upper()}_SENDER_RATE_LIMIT_PER_SECOND={setting} "
                f"(the limit is per process), so that together they stay within {provider}'s {p.provider_limit_per_second:g}/s."
            )
        if p.most_useful_replicas is not None and p.most_useful_replicas < p.replicas:
            notes.append(f"{p.channel}: beyond {p.most_useful_replicas} replica(s) {provider}'s limit binds, not the replicas.")
        if p.provider_limit_scope != "account":
            notes.append(f"{p.channel}: {provider} takes about {p.provider_limit_per_second:g} message/s per Slack channel, whatever the replicas.")
    lines += notes
    lines.append(f"target backlog/task: what one task sends in {inputs.target_delay_seconds:g} s (Terraform's senders.target_backlog_per_task).")
    return "\n".join(lines)


def _describe_scale(result: ScaleResult) -> str:
    running = "?" if result.running_tasks is None else result.running_tasks
    desired = "?" if result.desired_tasks is None else result.desired_tasks
    return (
        f"{result.channel}: autoscaling bounds {result.previous_min_tasks}-{result.previous_max_tasks} -> "
        f"{result.min_tasks}-{result.max_tasks} ({result.resource_id}; {running} running, {desired} desired). "
        "Application Auto Scaling moves the desired count into the new bounds. The next `terraform apply` sets the bounds "
        "from its `senders` variable again: put lasting values there."
    )

