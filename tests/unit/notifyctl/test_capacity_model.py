"""The capacity model (notifyctl/capacity_model.py): Little's law, the CPU bound, provider limits."""

from __future__ import annotations

from dataclasses import replace

import pytest

from notifyctl.capacity_model import DEFAULT_INPUTS, TASK_BOUNDS, CapacityInputs, plan, replica_capacity, target_backlog_per_task
from sender_email.settings import EmailSenderSettings
from sender_sms.settings import SmsSenderSettings
from shared.sender_settings import SenderSettings
from shared.topology import Channel


def _plan(rate: float, inputs: CapacityInputs = DEFAULT_INPUTS) -> dict[str, object]:
    return {p.channel: p for p in plan(rate, inputs)}


class TestDefaults:
    def test_are_the_senders_settings_and_the_measured_figures(self) -> None:
        assert DEFAULT_INPUTS.concurrency == SenderSettings.model_fields["concurrency"].default == 32
        assert DEFAULT_INPUTS.provider_limit_per_second == {
            Channel.SMS: SmsSenderSettings.model_fields["rate_limit_per_second"].default,
            Channel.EMAIL: EmailSenderSettings.model_fields["rate_limit_per_second"].default,
            Channel.SLACK: None,
        }
        # bench/sender.py: 141.8 delivered/s of the 160/s bound, 2.03 CPU ms per message.
        assert DEFAULT_INPUTS.efficiency == pytest.approx(141.8 / 160, abs=0.005)
        assert DEFAULT_INPUTS.cpu_ms_per_message == 2.03
        assert DEFAULT_INPUTS.problems() == []


class TestReplicaCapacity:
    def test_the_cpu_binds_a_quarter_vcpu_task(self) -> None:
        capacity, limited_by = replica_capacity(Channel.SLACK)
        assert limited_by == "CPU"
        assert capacity == pytest.approx(0.75 * 0.25 / 0.00203)

    def test_littles_law_binds_a_whole_vcpu(self) -> None:
        capacity, limited_by = replica_capacity(Channel.SLACK, replace(DEFAULT_INPUTS, task_vcpu=1.0))
        assert limited_by == "concurrency / latency"
        assert capacity == pytest.approx(0.89 * 32 / 0.2)

    def test_a_slower_provider_halves_it(self) -> None:
        inputs = replace(DEFAULT_INPUTS, task_vcpu=1.0, latency_seconds={**DEFAULT_INPUTS.latency_seconds, Channel.EMAIL: 0.4})
        assert replica_capacity(Channel.EMAIL, inputs)[0] == pytest.approx(replica_capacity(Channel.SMS, inputs)[0] / 2)


class TestPlan:
    def test_exactly_one_replicas_capacity_needs_one_replica(self) -> None:
        capacity, _ = replica_capacity(Channel.SLACK)
        assert _plan(capacity)["slack"].replicas == 1
        assert _plan(capacity * 1.001)["slack"].replicas == 2
        assert _plan(capacity * 3)["slack"].replicas == 3

    def test_above_the_account_quota_is_not_reachable(self) -> None:
        plans = _plan(15)
        assert plans["sms"].within_provider_limit and not plans["email"].within_provider_limit
        assert plans["slack"].within_provider_limit and plans["slack"].provider_limit_scope == "each recipient"
        assert plans["email"].most_useful_replicas == 1

    def test_the_quota_is_shared_out_among_the_replicas(self) -> None:
        limits = {**DEFAULT_INPUTS.provider_limit_per_second, Channel.SMS: 500.0}
        sms = _plan(250, replace(DEFAULT_INPUTS, provider_limit_per_second=limits))["sms"]
        assert sms.replicas == 3  # 250 / 92.4
        assert sms.rate_limit_per_replica == pytest.approx(500 / 3)
        assert sms.most_useful_replicas == 6  # 500 / 92.4
        # Each task sends at its capacity (92.4/s), below its share of the quota (166.7/s).
        assert sms.target_backlog_per_task == 923

    def test_slack_has_no_per_replica_share(self) -> None:
        slack = _plan(500)["slack"]
        assert (slack.rate_limit_per_replica, slack.most_useful_replicas) == (None, None)
        assert slack.provider_limit_per_second == 1.0


class TestTargetBacklogPerTask:
    @pytest.mark.parametrize("channel, expected", [(Channel.SMS, 200), (Channel.EMAIL, 140), (Channel.SLACK, 923)])
    def test_one_task_for_ten_seconds(self, channel: Channel, expected: int) -> None:
        assert target_backlog_per_task(channel) == expected

    def test_scales_with_the_accepted_delay(self) -> None:
        assert target_backlog_per_task(Channel.SMS, replace(DEFAULT_INPUTS, target_delay_seconds=30)) == 600


class TestTaskBounds:
    @pytest.mark.parametrize("low, high", [(1, 1), (1, 50), (50, 50), (3, 7)])
    def test_allowed(self, low: int, high: int) -> None:
        assert TASK_BOUNDS.problem(low, high) is None

    @pytest.mark.parametrize(
        "low, high, message",
        [(0, 5, "--min must be at least 1"), (1, 51, "--max must be at most 50"), (4, 3, "--max (3) must not be below --min (4)")],
    )
    def test_refused(self, low: int, high: int, message: str) -> None:
        assert message in (TASK_BOUNDS.problem(low, high) or "")


class TestInputs:
    def test_refuses_impossible_figures(self) -> None:
        inputs = replace(
            DEFAULT_INPUTS, efficiency=1.5, task_vcpu=0, latency_seconds={**DEFAULT_INPUTS.latency_seconds, Channel.SMS: 0}
        )
        assert inputs.problems() == [
            "latency of sms must be positive", "task_vcpu must be positive", "efficiency must be above 0 and at most 1",
        ]  # fmt: skip
