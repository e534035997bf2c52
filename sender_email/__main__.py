"""``python -m sender_email``: run the email sender."""

from __future__ import annotations

import shared.lean_process  # noqa: F401 - first, before the libraries it keeps lean
from shared.failover import NamedProvider
from shared.sender_service import run_sender

from sender_email.provider import EmailProvider
from sender_email.settings import EmailSenderSettings


def main() -> int:
    settings = EmailSenderSettings()
    return run_sender(settings=settings, providers=[NamedProvider("ses", EmailProvider(settings))])


if __name__ == "__main__":
    raise SystemExit(main())
