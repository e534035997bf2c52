"""``python -m sender_slack``: run the Slack sender."""

from __future__ import annotations

import shared.lean_process  # noqa: F401 - first, before the libraries it keeps lean
from shared.failover import NamedProvider
from shared.sender_service import run_sender

from sender_slack.provider import SlackProvider
from sender_slack.settings import SlackSenderSettings


def main() -> int:
    settings = SlackSenderSettings()
    return run_sender(settings=settings, providers=[NamedProvider("slack", SlackProvider(settings))])


if __name__ == "__main__":
    raise SystemExit(main())
