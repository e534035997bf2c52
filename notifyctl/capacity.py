"""What each channel has on AWS, and its autoscaling bounds: ``notifyctl capacity`` and ``scale``.

Per channel: its queue from SQS (messages waiting and in flight); the age of its oldest message
from CloudWatch (``AWS/SQS`` ``ApproximateAgeOfOldestMessage``, which SQS publishes every minute
for an active queue: asking SQS itself would mean receiving from the queue, which counts towards
the messages' five receives); its sender's ECS service (running, pending and desired tasks); and
the service's scalable target in Application Auto Scaling (the bounds ``scale`` changes).

Names as ``terraform/modules/compute`` makes them: the cluster is the deployment's ``name``
(``NOTIFYCTL_ECS_CLUSTER``, default ``notifications``, Terraform's default), each sender's service
``<name>-sender-<channel>`` (``NOTIFYCTL_ECS_SERVICE_PREFIX``, default ``notifications-sender-``),
its scalable target ``service/<cluster>/<service>`` on ``ecs:service:DesiredCount``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from pydantic_settings import SettingsConfigDict

from notifyctl.capacity_model import TASK_BOUNDS
from notifyctl.errors import BadCommandLineError, FailedError
from shared.queue_metrics import queue_counts
from shared.settings import ServiceSettings
from shared.topology import Channel, queues_for

SCALABLE_DIMENSION = "ecs:service:DesiredCount"
# CloudWatch keeps SQS's one-minute data points; the newest within this window is shown.
AGE_WINDOW = timedelta(minutes=15)
AGE_PERIOD_SECONDS = 60


class CapacitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFYCTL_")

    ecs_cluster: str = "notifications"
    ecs_service_prefix: str = "notifications-sender-"

    def service_name(self, channel: Channel) -> str:
        return f"{self.ecs_service_prefix}{channel.value}"

    def resource_id(self, channel: Channel) -> str:
        return f"service/{self.ecs_cluster}/{self.service_name(channel)}"


@dataclass(frozen=True)
class ChannelCapacity:
    channel: str
    queue: str
    messages_waiting: int | None
    messages_in_flight: int | None
    # None when CloudWatch has no data point in the last AGE_WINDOW (an idle queue, an emulator).
    oldest_message_age_seconds: float | None
    oldest_message_age_at: datetime | None
    service: str
    running_tasks: int | None
    pending_tasks: int | None
    desired_tasks: int | None
    min_tasks: int | None
    max_tasks: int | None
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ScaleResult:
    channel: str
    resource_id: str
    previous_min_tasks: int
    previous_max_tasks: int
    min_tasks: int
    max_tasks: int
    running_tasks: int | None
    desired_tasks: int | None


class ChannelCapacities:
    """Reads (and, for ``scale``, sets) what AWS runs per channel."""

    def __init__(self, *, settings: CapacitySettings, sqs: Any, cloudwatch: Any, ecs: Any, autoscaling: Any) -> None:
        self._settings = settings
        self._sqs = sqs
        self._cloudwatch = cloudwatch
        self._ecs = ecs
        self._autoscaling = autoscaling

    async def read(self, channels: Sequence[Channel] = tuple(Channel)) -> list[ChannelCapacity]:
        services = await self._services(channels)
        targets = await self._targets(channels)
        ages = await oldest_message_ages(self._cloudwatch, channels)
        result = []
        for channel in channels:
            problems: list[str] = []
            queue = queues_for(channel).queue
            waiting = in_flight = None
            try:
                url = (await self._sqs.get_queue_url(QueueName=queue))["QueueUrl"]
                waiting, in_flight = await queue_counts(self._sqs, url)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if "NonExistentQueue" not in code and "QueueDoesNotExist" not in code:
                    raise
                problems.append(f"queue {queue} does not exist (`notifyctl topology create`)")
            service = services.get(channel)
            if service is None:
                problems.append(f"ECS service {self._settings.service_name(channel)} is not in cluster {self._settings.ecs_cluster} (NOTIFYCTL_ECS_SERVICE_PREFIX)")
            target = targets.get(channel)
            if target is None and service is not None:
                problems.append(f"{self._settings.resource_id(channel)} has no scalable target (terraform apply creates it)")
            age, measured_at = ages.get(channel, (None, None))
            result.append(
                ChannelCapacity(
                    channel=channel.value,
                    queue=queue,
                    messages_waiting=waiting,
                    messages_in_flight=in_flight,
                    oldest_message_age_seconds=age,
                    oldest_message_age_at=measured_at,
                    service=self._settings.service_name(channel),
                    running_tasks=service["runningCount"] if service else None,
                    pending_tasks=service["pendingCount"] if service else None,
                    desired_tasks=service["desiredCount"] if service else None,
                    min_tasks=target["MinCapacity"] if target else None,
                    max_tasks=target["MaxCapacity"] if target else None,
                    problems=problems,
                )
            )
        return result

    async def scale(self, channel: Channel, *, min_tasks: int | None, max_tasks: int | None) -> ScaleResult:
        """Set the channel's autoscaling bounds; an omitted one keeps its current value."""
        target = (await self._targets([channel])).get(channel)
        if target is None:
            raise FailedError(
                f"{self._settings.resource_id(channel)} has no scalable target: `terraform apply` creates it "
                "(or check NOTIFYCTL_ECS_CLUSTER / NOTIFYCTL_ECS_SERVICE_PREFIX and AWS_REGION)"
            )
        new_min = target["MinCapacity"] if min_tasks is None else min_tasks
        new_max = target["MaxCapacity"] if max_tasks is None else max_tasks
        if problem := TASK_BOUNDS.problem(new_min, new_max):
            raise BadCommandLineError(f"refused, nothing changed: {problem}")
        await self._autoscaling.register_scalable_target(
            ServiceNamespace="ecs",
            ResourceId=self._settings.resource_id(channel),
            ScalableDimension=SCALABLE_DIMENSION,
            MinCapacity=new_min,
            MaxCapacity=new_max,
        )
        service = (await self._services([channel])).get(channel)
        return ScaleResult(
            channel=channel.value,
            resource_id=self._settings.resource_id(channel),
            previous_min_tasks=target["MinCapacity"],
            previous_max_tasks=target["MaxCapacity"],
            min_tasks=new_min,
            max_tasks=new_max,
            running_tasks=service["runningCount"] if service else None,
            desired_tasks=service["desiredCount"] if service else None,
        )

    # -- AWS ---------------------------------------------------------------------------

    async def _services(self, channels: Sequence[Channel]) -> dict[Channel, dict[str, Any]]:
        names = {self._settings.service_name(channel): channel for channel in channels}
        try:
            response = await self._ecs.describe_services(cluster=self._settings.ecs_cluster, services=list(names))
        except self._ecs.exceptions.ClusterNotFoundException:
            raise FailedError(
                f"ECS cluster {self._settings.ecs_cluster!r} does not exist in {self._settings.aws_region} "
                "(NOTIFYCTL_ECS_CLUSTER is Terraform's `name`; AWS_REGION its region)"
            ) from None
        return {names[s["serviceName"]]: s for s in response.get("services", []) if s["serviceName"] in names}

    async def _targets(self, channels: Sequence[Channel]) -> dict[Channel, dict[str, Any]]:
        ids = {self._settings.resource_id(channel): channel for channel in channels}
        response = await self._autoscaling.describe_scalable_targets(
            ServiceNamespace="ecs", ResourceIds=list(ids), ScalableDimension=SCALABLE_DIMENSION
        )
        return {ids[t["ResourceId"]]: t for t in response.get("ScalableTargets", []) if t["ResourceId"] in ids}


async def oldest_message_ages(cloudwatch: Any, channels: Sequence[Channel]) -> dict[Channel, tuple[float, datetime]]:
    """Per channel, the age in seconds of its queue's oldest message and when CloudWatch measured it
    (the newest data point in the last AGE_WINDOW); channels without one are left out."""
    queries = [
        {
            "Id": f"age_{channel.value}",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/SQS",
                    "MetricName": "ApproximateAgeOfOldestMessage",
                    "Dimensions": [{"Name": "QueueName", "Value": queues_for(channel).queue}],
                },
                "Period": AGE_PERIOD_SECONDS,
                "Stat": "Maximum",
            },
            "ReturnData": True,
        }
        for channel in channels
    ]
    # The end of the current minute: CloudWatch aligns to the period anyway, and an end of "now"
    # (truncated to the second by some implementations) can leave out a point put this second.
    now = datetime.now(UTC)
    end = now.replace(second=0, microsecond=0) + timedelta(seconds=AGE_PERIOD_SECONDS)
    response = await cloudwatch.get_metric_data(
        MetricDataQueries=queries, StartTime=end - AGE_WINDOW, EndTime=end, ScanBy="TimestampDescending"
    )
    ages = {}
    for series in response.get("MetricDataResults", []):
        channel = Channel(series["Id"].removeprefix("age_"))
        points = sorted(zip(series.get("Timestamps", []), series.get("Values", []), strict=False), reverse=True)
        if points:
            measured_at, value = points[0]
            ages[channel] = (float(value), measured_at)
    return ages
