"""``python -m sender_sms``: run the SMS sender, and its reader of SNS delivery status logs (receipts)."""

from __future__ import annotations

import asyncio

import shared.lean_process  # noqa: F401 - first, before the libraries it keeps lean
from shared.database import Database
from shared.sender_service import BackgroundTask, run_sender

from sender_sms.provider import SmsProvider
from sender_sms.settings import SmsSenderSettings


def delivery_log_reader(settings: SmsSenderSettings) -> BackgroundTask:
    """The task reading SNS's SMS delivery status logs for as long as the sender runs."""

    async def read(database: Database, stop: asyncio.Event) -> None:
        from sender_sms.delivery_logs import SmsDeliveryLogReader, delivery_log_groups
        from shared.aws import aws_clients
        from shared.receipts import ReceiptRepository

        async with aws_clients(settings, "logs", "sts") as (logs, sts):
            account = (await sts.get_caller_identity())["Account"]
            reader = SmsDeliveryLogReader(
                logs=logs,
                receipts=ReceiptRepository(database),
                log_groups=delivery_log_groups(settings.aws_region, account),
                overlap_seconds=settings.delivery_logs_overlap_seconds,
                unknown_retry_seconds=settings.receipts_unknown_retry_seconds,
            )
            await reader.run(stop, poll_seconds=settings.delivery_logs_poll_seconds)

    return read


def main() -> int:
    settings = SmsSenderSettings()
    tasks = [delivery_log_reader(settings)] if settings.delivery_logs_enabled else []
    return run_sender(settings=settings, provider=SmsProvider(settings), tasks=tasks)


if __name__ == "__main__":
    raise SystemExit(main())
