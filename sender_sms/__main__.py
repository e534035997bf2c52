"""``python -m sender_sms``: run the SMS sender."""

from __future__ import annotations

import shared.lean_process  # noqa: F401 - first, before the libraries it keeps lean
from shared.sender_service import run_sender

from sender_sms.provider import SmsProvider
from sender_sms.settings import SmsSenderSettings


def main() -> int:
    settings = SmsSenderSettings()
    return run_sender(settings=settings, provider=SmsProvider(settings))


if __name__ == "__main__":
    raise SystemExit(main())
