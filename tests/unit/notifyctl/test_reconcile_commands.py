"""notifyctl/reconcile_commands.py: the durations --older-than takes, and the report people read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from notifyctl.errors import BadCommandLineError
from notifyctl.reconcile import ChannelReconciliation, Reconciliation
from notifyctl.reconcile_commands import _describe, parse_duration


class TestParseDuration:
    @pytest.mark.parametrize(
        ("text", "seconds"), [("15m", 900), ("90s", 90), ("2h", 7200), ("1d", 86400), ("300", 300), ("1.5h", 5400), (" 15M ", 900)]
    )
    def test_durations(self, text: str, seconds: float) -> None:
        assert parse_duration(text) == seconds

    @pytest.mark.parametrize("text", ["", "m", "15 minutes", "-5m", "1w", "15m30s"])
    def test_refused(self, text: str) -> None:
        with pytest.raises(BadCommandLineError, match="--older-than takes a duration"):
            parse_duration(text)


class TestDescribe:
    def test_a_run_per_channel_with_its_warnings(self) -> None:
        quiet = datetime(2026, 12, 1, 23, 49, 53, tzinfo=UTC)
        result = Reconciliation(
            dry_run=False,
            older_than_seconds=900,
            channels=[ChannelReconciliation("sms", 38, 35, 3, quiet, 37, 1), ChannelReconciliation("email")],
            warnings=["email: CloudWatch has no ApproximateAgeOfOldestMessage for email_queue; not checked for a backlog"],
        )
        assert _describe(result).splitlines() == [
            "Deliveries not final with no sign of life for 15.0m and no outbox row (published again through the topic):",
            "channel   found  pending  sending  quiet since                published again  left in outbox",
            "sms          38       35        3  2026-12-01 23:49:53 UTC                  37               1",
            "email         0        0        0  -                                        0               0",
            "warning: email: CloudWatch has no ApproximateAgeOfOldestMessage for email_queue; not checked for a backlog",
        ]

    def test_a_dry_run_says_what_it_would_publish(self) -> None:
        result = Reconciliation(dry_run=True, older_than_seconds=3600, channels=[ChannelReconciliation("slack", 4, 4)])
        lines = _describe(result).splitlines()
        assert lines[0].endswith("(dry run: nothing changed):") and "would publish again" in lines[1]
        assert lines[2].split()[:2] == ["slack", "4"] and lines[2].split()[-2:] == ["4", "0"]
