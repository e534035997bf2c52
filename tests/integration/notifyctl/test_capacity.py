"""``notifyctl capacity`` and ``notifyctl scale`` as operators run them: the installed console script as
a subprocess, against the moto server, where each test module builds what Terraform builds on AWS: the
topology (``notifyctl topology create``, as the DR runbook does in a second region), an ECS cluster
named after the deployment, one service per sender with ``min_tasks`` desired, and a scalable target per
service with Terraform's default bounds (read from ``terraform/variables.tf``).

moto has no CloudWatch data of its own for SQS: the test publishes the ``ApproximateAgeOfOldestMessage``
data point SQS would publish for one queue, and the others show what an operator sees when
CloudWatch has none. Everything runs in a region of its own, so nothing the other tests put on the
queues of us-east-1 is counted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import hcl2
import pytest

from shared.topology import Channel, queues_for
from stack.moto import MotoServer
from stack.network import free_port

pytestmark = pytest.mark.timeout(180)

NOTIFYCTL = Path(sys.executable).parent / "notifyctl"
REPO = Path(__file__).resolve().parents[3]
REGION = "ap-southeast-2"
SCALABLE_DIMENSION = "ecs:service:DesiredCount"


def _terraform_sender_defaults() -> dict[str, dict[str, Any]]:
    with (REPO / "terraform" / "variables.tf").open() as file:
        (senders,) = [block["senders"] for block in hcl2.load(file)["variable"] if "senders" in block]
    default = senders["default"]
    return default[0] if isinstance(default, list) else default


SENDER_DEFAULTS = _terraform_sender_defaults()


@dataclass
class Aws:
    endpoint_url: str

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")

    def deploy_like_terraform(self, name: str) -> None:
        """terraform/modules/compute: cluster `name`, services `<name>-sender-<channel>`, their scalable targets."""
        ecs, autoscaling = self.client("ecs"), self.client("application-autoscaling")
        ecs.create_cluster(clusterName=name, settings=[{"name": "containerInsights", "value": "enabled"}])
        for channel in Channel:
            bounds = SENDER_DEFAULTS[channel.value]
            definition = ecs.register_task_definition(
                family=f"{name}-sender-{channel.value}",
                requiresCompatibilities=["FARGATE"],
                networkMode="awsvpc",
                cpu=str(bounds["cpu"]),
                memory=str(bounds["memory"]),
                containerDefinitions=[{"name": f"sender-{channel.value}", "image": f"sender-{channel.value}:test", "essential": True}],
            )["taskDefinition"]["taskDefinitionArn"]
            ecs.create_service(
                cluster=name,
                serviceName=f"{name}-sender-{channel.value}",
                taskDefinition=definition,
                desiredCount=bounds["min_tasks"],
                launchType="FARGATE",
            )
            autoscaling.register_scalable_target(
                ServiceNamespace="ecs",
                ResourceId=f"service/{name}/{name}-sender-{channel.value}",
                ScalableDimension=SCALABLE_DIMENSION,
                MinCapacity=bounds["min_tasks"],
                MaxCapacity=bounds["max_tasks"],
            )

    def bounds(self, name: str, channel: str) -> tuple[int, int]:
        (target,) = self.client("application-autoscaling").describe_scalable_targets(
            ServiceNamespace="ecs", ResourceIds=[f"service/{name}/{name}-sender-{channel}"], ScalableDimension=SCALABLE_DIMENSION
        )["ScalableTargets"]
        return target["MinCapacity"], target["MaxCapacity"]


@dataclass
class Cli:
    env: dict[str, str]

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(NOTIFYCTL), *args], capture_output=True, text=True, timeout=120, env={**os.environ, **self.env, **env}, check=False
        )

    def json(self, *args: str, expect: int = 0, **env: str) -> Any:
        result = self(*args, "--json", **env)
        assert result.returncode == expect, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
        return json.loads(result.stdout)


@pytest.fixture(scope="module")
def aws(moto: MotoServer) -> Iterator[Aws]:
    yield Aws(moto.endpoint_url)


@pytest.fixture(scope="module")
def cli(aws: Aws) -> Cli:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("NOTIFYCTL_")}
    return Cli({**environment, "AWS_ENDPOINT_URL": aws.endpoint_url, "AWS_REGION": REGION, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "COLUMNS": "200"})


@pytest.fixture(scope="module")
def deployment(aws: Aws, cli: Cli) -> Aws:
    """The default deployment (`name = "notifications"`) with some traffic on its queues."""
    assert cli("topology", "create").returncode == 0
    aws.deploy_like_terraform("notifications")
    # The Slack service scaled out to 3 by its policy (moto reports an updated desired count as running).
    aws.client("ecs").update_service(cluster="notifications", service="notifications-sender-slack", desiredCount=3)
    sqs = aws.client("sqs")
    for channel, count in ((Channel.SMS, 7), (Channel.EMAIL, 3)):
        url = sqs.get_queue_url(QueueName=queues_for(channel).queue)["QueueUrl"]
        for number in range(count):
            sqs.send_message(QueueUrl=url, MessageBody=f"message {number}")
    email_url = sqs.get_queue_url(QueueName=queues_for(Channel.EMAIL).queue)["QueueUrl"]
    received = sqs.receive_message(QueueUrl=email_url, MaxNumberOfMessages=2, VisibilityTimeout=600)["Messages"]
    assert len(received) == 2
    aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[{
            "MetricName": "ApproximateAgeOfOldestMessage",
            "Dimensions": [{"Name": "QueueName", "Value": queues_for(Channel.SMS).queue}],
            "Value": 754.0,
            "Unit": "Seconds",
        }],
    )  # fmt: skip
    return aws


class TestCapacity:
    def test_every_channel_as_json(self, deployment: Aws, cli: Cli) -> None:
        rows = {row["channel"]: row for row in cli.json("capacity")}
        assert list(rows) == ["sms", "email", "slack"]
        sms, email, slack = rows["sms"], rows["email"], rows["slack"]
        assert (sms["messages_waiting"], sms["messages_in_flight"]) == (7, 0)
        assert (email["messages_waiting"], email["messages_in_flight"]) == (1, 2)
        assert (slack["messages_waiting"], slack["messages_in_flight"]) == (0, 0)
        assert sms["oldest_message_age_seconds"] == 754.0 and sms["oldest_message_age_at"]
        assert email["oldest_message_age_seconds"] is None and email["oldest_message_age_at"] is None
        assert slack["service"] == "notifications-sender-slack"
        assert (slack["running_tasks"], slack["desired_tasks"]) == (3, 3)
        assert email["desired_tasks"] == SENDER_DEFAULTS["email"]["min_tasks"]
        for channel, row in rows.items():
            assert (row["min_tasks"], row["max_tasks"]) == (SENDER_DEFAULTS[channel]["min_tasks"], SENDER_DEFAULTS[channel]["max_tasks"])
            assert row["problems"] == []

    def test_for_people(self, deployment: Aws, cli: Cli) -> None:
        result = cli("capacity", "--channel", "sms", "--channel", "slack")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].split()[:4] == ["channel", "waiting", "in", "flight"]
        sms = SENDER_DEFAULTS["sms"]
        assert lines[1].split() == ["sms", "7", "0", "12.6m", "0/1/1", f"{sms['min_tasks']}-{sms['max_tasks']}"]
        slack = SENDER_DEFAULTS["slack"]
        assert lines[2].split() == ["slack", "0", "0", "no", "data", "3/0/3", f"{slack['min_tasks']}-{slack['max_tasks']}"]
        assert lines[3].startswith("no data: CloudWatch has no ApproximateAgeOfOldestMessage")

    def test_a_deployment_under_another_name(self, deployment: Aws, cli: Cli) -> None:
        missing = cli("capacity", NOTIFYCTL_ECS_CLUSTER="notifications-staging")
        assert missing.returncode == 1
        assert "ECS cluster 'notifications-staging' does not exist in ap-southeast-2" in missing.stderr

        # The cluster exists, its services are named otherwise: shown as far as known, exit 1.
        result = cli("capacity", "--json", NOTIFYCTL_ECS_SERVICE_PREFIX="notifications-worker-")
        assert result.returncode == 1
        rows = json.loads(result.stdout)
        assert [row["running_tasks"] for row in rows] == [None, None, None]
        assert rows[0]["messages_waiting"] == 7
        assert "ECS service notifications-worker-sms is not in cluster notifications" in rows[0]["problems"][0]
        assert json.loads(result.stderr)["error"]["exit_code"] == 1

    def test_aws_unreachable_is_try_again(self, cli: Cli) -> None:
        result = cli("capacity", AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}")
        assert result.returncode == 4, result.stderr
        assert "cannot reach AWS" in result.stderr


BLUE = "notify-blue"


@pytest.fixture(scope="module")
def blue(aws: Aws) -> dict[str, str]:
    """A second deployment, `name = "notify-blue"`, for the tests that change bounds; and its settings."""
    aws.deploy_like_terraform(BLUE)
    return {"NOTIFYCTL_ECS_CLUSTER": BLUE, "NOTIFYCTL_ECS_SERVICE_PREFIX": f"{BLUE}-sender-"}


class TestScale:
    NAME = BLUE

    def test_sets_the_bounds(self, aws: Aws, cli: Cli, blue: dict[str, str]) -> None:
        result = cli.json("scale", "slack", "--min", "2", "--max", "6", **blue)
        assert result == {
            "channel": "slack",
            "resource_id": f"service/{self.NAME}/{self.NAME}-sender-slack",
            "previous_min_tasks": SENDER_DEFAULTS["slack"]["min_tasks"],
            "previous_max_tasks": SENDER_DEFAULTS["slack"]["max_tasks"],
            "min_tasks": 2,
            "max_tasks": 6,
            "running_tasks": 0,
            "desired_tasks": SENDER_DEFAULTS["slack"]["min_tasks"],
        }
        assert aws.bounds(self.NAME, "slack") == (2, 6)

        # One bound alone keeps the other; the human form says what changed and what Terraform will do.
        human = cli("scale", "slack", "--max", "8", **blue)
        assert human.returncode == 0, human.stderr
        assert human.stdout.startswith(f"slack: autoscaling bounds 2-6 -> 2-8 (service/{self.NAME}/{self.NAME}-sender-slack;")
        assert "The next `terraform apply` sets the bounds from its `senders` variable again" in human.stdout
        assert aws.bounds(self.NAME, "slack") == (2, 8)

    @pytest.mark.parametrize(
        "args, message",
        [
            (("--min", "0", "--max", "3"), "--min must be at least 1"),
            (("--max", "51"), "--max must be at most 50 (Terraform's limit for a sender), got 51"),
            (("--min", "5", "--max", "4"), "--max (4) must not be below --min (5)"),
            # Valid alone, refused against the current maximum (Terraform's default).
            (
                ("--min", str(SENDER_DEFAULTS["sms"]["max_tasks"] + 1)),
                f"--max ({SENDER_DEFAULTS['sms']['max_tasks']}) must not be below --min ({SENDER_DEFAULTS['sms']['max_tasks'] + 1})",
            ),
            ((), "give --min, --max or both"),
        ],
    )
    def test_refuses_what_terraform_refuses(self, aws: Aws, cli: Cli, blue: dict[str, str], args: tuple[str, ...], message: str) -> None:
        before = aws.bounds(self.NAME, "sms")
        result = cli("scale", "sms", *args, "--json", **blue)
        assert result.returncode == 2, result.stderr
        error = json.loads(result.stderr)["error"]
        assert message in error["message"] and error["kind"] == "usage"
        assert aws.bounds(self.NAME, "sms") == before

    def test_no_scalable_target(self, aws: Aws, cli: Cli, blue: dict[str, str]) -> None:
        aws.client("application-autoscaling").deregister_scalable_target(
            ServiceNamespace="ecs", ResourceId=f"service/{self.NAME}/{self.NAME}-sender-email", ScalableDimension=SCALABLE_DIMENSION
        )
        result = cli("scale", "email", "--max", "3", **blue)
        assert result.returncode == 1
        assert f"service/{self.NAME}/{self.NAME}-sender-email has no scalable target: `terraform apply` creates it" in result.stderr


class TestPlan:
    def test_within_the_providers_limits(self, cli: Cli) -> None:
        plan = cli.json("capacity", "--plan", "12")
        channels = {row["channel"]: row for row in plan["channels"]}
        assert plan["inputs"]["efficiency"] == 0.89 and plan["inputs"]["cpu_ms_per_message"] == 2.03
        assert {name: row["replicas"] for name, row in channels.items()} == {"sms": 1, "email": 1, "slack": 1}
        assert {name: row["target_backlog_per_task"] for name, row in channels.items()} == {
            name: SENDER_DEFAULTS[name]["target_backlog_per_task"] for name in channels
        }

    def test_above_a_providers_limit(self, cli: Cli) -> None:
        result = cli("capacity", "--plan", "100", "--channel", "email")
        assert result.returncode == 1
        assert "email: 100/s is above SES's 14/s: no number of replicas delivers it." in result.stdout
        assert "error: email: 100/s is above the provider's 14/s: no number of replicas delivers it" in result.stderr

    def test_with_a_raised_quota(self, cli: Cli) -> None:
        plan = cli.json("capacity", "--plan", "300", "--provider-limit", "sms=400", "--latency", "sms=0.1", "--task-vcpu", "1", "--channel", "sms")
        (sms,) = plan["channels"]
        # One replica: min(0.89 x 32 / 0.1 s, 0.75 x 1 vCPU / 2.03 ms) = min(284.8, 369.5).
        assert sms["limited_by"] == "concurrency / latency" and sms["replica_capacity_per_second"] == pytest.approx(284.8)
        assert (sms["replicas"], sms["rate_limit_per_replica"], sms["most_useful_replicas"]) == (2, 200.0, 2)
        assert sms["target_backlog_per_task"] == 2000

    def test_model_options_without_plan_are_a_bad_command_line(self, cli: Cli) -> None:
        result = cli("capacity", "--efficiency", "0.5")
        assert result.returncode == 2 and "--efficiency: only with --plan RATE" in result.stderr
