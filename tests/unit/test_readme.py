"""The README stays true: it documents every setting, and CI runs its test command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from callback_sender.settings import CallbackSenderSettings
from gateway.settings import GatewaySettings
from notifyctl.capacity import CapacitySettings
from sender_email.settings import EmailSenderSettings
from sender_slack.settings import SlackSenderSettings
from sender_sms.settings import SmsSenderSettings
from shared.settings import ServiceSettings, environment_names
from stack.runner import StackSettings

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
SENDERS = (SmsSenderSettings, EmailSenderSettings, SlackSenderSettings)


@pytest.mark.parametrize("settings_cls", [ServiceSettings, GatewaySettings, *SENDERS, CallbackSenderSettings, StackSettings, CapacitySettings], ids=lambda cls: cls.__name__)
def test_every_setting_is_documented(settings_cls: type) -> None:
    prefix = settings_cls.model_config.get("env_prefix", "")
    missing = []
    for name in sorted(environment_names(settings_cls)):
        # Sender runtime settings are documented once, without their per-sender prefix.
        short = name.removeprefix(prefix) if prefix.endswith("_SENDER_") else name
        if f"`{name}`" not in README and not re.search(rf"`{re.escape(short)}`", README):
            missing.append(name)
    assert not missing, f"README.md does not document: {', '.join(missing)}"


def test_quick_start_has_the_two_commands_and_ci_runs_the_test_one() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^(make \w+)", quick_start, flags=re.MULTILINE)
    assert commands == ["make up", "make test"]
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^exec make test\b", ci, flags=re.MULTILINE)
