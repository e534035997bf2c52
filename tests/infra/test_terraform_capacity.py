"""terraform/ sizes the senders as notifyctl/capacity_model.py computes, allows what it allows, and
names them as notifyctl/capacity.py looks for them.

The defaults of the root module's ``senders`` variable (read with the HCL parser checkov ships) must
be what the capacity model computes for its documented inputs: the backlog-per-task target and the
task's vCPU. Its validation must accept exactly the (min_tasks, max_tasks) pairs that
``TASK_BOUNDS`` (and so ``notifyctl scale``) accepts: that is checked by Terraform itself, planning
the variable alone (no provider needed) for pairs around every bound.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

from notifyctl.capacity import SCALABLE_DIMENSION, CapacitySettings
from notifyctl.capacity_model import DEFAULT_INPUTS, SETTINGS, TASK_BOUNDS, most_useful_replicas, target_backlog_per_task
from shared.topology import Channel

REPO = Path(__file__).resolve().parents[2]
VARIABLES = REPO / "terraform" / "variables.tf"
COMPUTE = REPO / "terraform" / "modules" / "compute"


def _load(path: Path) -> dict[str, Any]:
    with path.open() as file:
        return hcl2.load(file)


def _variable(name: str) -> dict[str, Any]:
    (variable,) = [block[name] for block in _load(VARIABLES)["variable"] if name in block]
    return variable


def _senders_variable() -> dict[str, Any]:
    return _variable("senders")


def _resource(path: Path, kind: str, name: str) -> dict[str, Any]:
    (resource,) = [block[kind][name] for block in _load(path)["resource"] if name in block.get(kind, {})]
    return {key: _unwrap(value) for key, value in resource.items()}


def _unwrap(value: Any) -> Any:
    return value[0] if isinstance(value, list) and len(value) == 1 else value


SENDERS = _senders_variable()
DEFAULTS: dict[str, dict[str, Any]] = _unwrap(SENDERS["default"])


class TestDefaults:
    @pytest.mark.parametrize("channel", list(Channel))
    def test_target_backlog_per_task_is_the_models(self, channel: Channel) -> None:
        assert DEFAULTS[channel.value]["target_backlog_per_task"] == target_backlog_per_task(channel, DEFAULT_INPUTS), (
            "terraform/variables.tf's senders default disagrees with the capacity model: recompute it with "
            "`notifyctl capacity --plan 1` or change the model's documented inputs"
        )

    @pytest.mark.parametrize("channel", [c for c in Channel if DEFAULT_INPUTS.provider_limit_per_second[c] is not None])
    def test_quota_bound_channels_stay_within_their_quota_with_every_task(self, channel: Channel) -> None:
        quota = DEFAULT_INPUTS.provider_limit_per_second[channel]
        per_task = DEFAULTS[channel.value].get("rate_limit_per_second") or SETTINGS[channel].model_fields["rate_limit_per_second"].default
        if SETTINGS[channel].model_fields["rate_limit_shared"].default:
            # One bucket for every task: the limit is the quota, whatever max_tasks.
            assert per_task <= quota
            assert DEFAULTS[channel.value]["max_tasks"] >= most_useful_replicas(channel, DEFAULT_INPUTS)
        else:
            # Each task's rate limit times the tasks stays within the quota.
            assert DEFAULTS[channel.value]["max_tasks"] == most_useful_replicas(channel, DEFAULT_INPUTS)
            assert per_task * DEFAULTS[channel.value]["max_tasks"] <= quota

    @pytest.mark.parametrize("channel", list(Channel))
    def test_the_models_task_is_terraforms(self, channel: Channel) -> None:
        assert DEFAULTS[channel.value]["cpu"] / 1024 == DEFAULT_INPUTS.task_vcpu

    @pytest.mark.parametrize("channel", list(Channel))
    def test_default_bounds_are_allowed(self, channel: Channel) -> None:
        defaults = DEFAULTS[channel.value]
        assert TASK_BOUNDS.problem(defaults["min_tasks"], defaults["max_tasks"]) is None


class TestNames:
    def test_notifyctl_looks_for_what_terraform_names(self) -> None:
        name = _unwrap(_variable("name")["default"])
        assert _resource(COMPUTE / "main.tf", "aws_ecs_cluster", "this")["name"] == "${var.name}"
        assert _resource(COMPUTE / "services.tf", "aws_ecs_service", "sender")["name"] == "${var.name}-sender-${each.key}"
        target = _resource(COMPUTE / "autoscaling.tf", "aws_appautoscaling_target", "sender")
        assert target["resource_id"] == "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.sender[each.key].name}"
        assert target["scalable_dimension"] == SCALABLE_DIMENSION

        fields = CapacitySettings.model_fields
        assert fields["ecs_cluster"].default == name
        assert fields["ecs_service_prefix"].default == f"{name}-sender-"
        settings = CapacitySettings(ecs_cluster=name, ecs_service_prefix=f"{name}-sender-")
        assert settings.resource_id(Channel.SLACK) == f"service/{name}/{name}-sender-slack"


def _pairs() -> list[tuple[int, int]]:
    around = lambda bound: {bound - 1, bound, bound + 1}  # noqa: E731
    values = sorted(around(TASK_BOUNDS.floor) | around(TASK_BOUNDS.ceiling) | {2})
    return [(low, high) for low in values for high in values]


@pytest.fixture(scope="module")
def variable_alone(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip(
            "the terraform CLI is not on PATH, so Terraform cannot evaluate the variable's validation: neither Debian "
            "nor PyPI packages Terraform (HashiCorp's BSL licence); install it from HashiCorp's releases to run this check"
        )
    directory = tmp_path_factory.mktemp("senders-variable")
    lines = VARIABLES.read_text().splitlines()
    block = lines[SENDERS["__start_line__"] - 1 : SENDERS["__end_line__"]]
    (directory / "main.tf").write_text("\n".join(block) + "\n")
    result = subprocess.run([terraform, "init", "-input=false", "-no-color"], cwd=directory, env=_environment(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return terraform, directory


def _environment() -> dict[str, str]:
    return {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}


class TestValidation:
    def test_terraform_accepts_exactly_what_the_bounds_accept(self, variable_alone: tuple[str, Path]) -> None:
        terraform, directory = variable_alone
        disagreements = []
        for low, high in _pairs():
            senders = {channel: dict(values) for channel, values in DEFAULTS.items()}
            senders["slack"].update(min_tasks=low, max_tasks=high)
            result = subprocess.run(
                [terraform, "plan", "-input=false", "-no-color", "-var", f"senders={json.dumps(senders)}"],
                cwd=directory, env=_environment(), capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            accepted = result.returncode == 0
            if not accepted:
                assert "Invalid value for variable" in result.stderr, result.stdout + result.stderr
            if accepted != (TASK_BOUNDS.problem(low, high) is None):
                disagreements.append(f"min_tasks={low} max_tasks={high}: Terraform {'accepts' if accepted else 'refuses'} it")
        assert not disagreements, "Terraform's validation and TASK_BOUNDS disagree:\n" + "\n".join(disagreements)
