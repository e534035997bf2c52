"""``python -m sender_email``: run the email sender, and its consumer of SES events (receipts)."""

from __future__ import annotations

import shared.lean_process  # noqa: F401 - first, before the libraries it keeps lean
from shared.sender_service import HandledQueue, run_sender

from sender_email.provider import email_providers
from sender_email.settings import EmailSenderSettings


def receipts_queue(settings: EmailSenderSettings) -> HandledQueue:
    """The ``email_events`` queue, consumed by ``EmailReceiptConsumer`` in this process."""
    from sender_email.receipts_consumer import EmailReceiptConsumer
    from shared.receipts import ReceiptRepository

    runtime = settings.model_copy(update={"concurrency": settings.receipts_concurrency, "receivers": 0})
    return HandledQueue(
        queue_name=settings.receipts_queue_name,
        dead_letter_queue_name=settings.receipts_dead_letter_queue_name,
        settings=runtime,
        consumer=lambda queue, database, instance_id: EmailReceiptConsumer(
            settings=runtime,
            queue=queue,
            receipts=ReceiptRepository(database),
            instance_id=instance_id,
            unknown_retry_seconds=settings.receipts_unknown_retry_seconds,
        ),
    )


def main() -> int:
    settings = EmailSenderSettings()
    handled = [receipts_queue(settings)] if settings.receipts_queue_name else []
    return run_sender(settings=settings, providers=email_providers(settings), handled_queues=handled)


if __name__ == "__main__":
    raise SystemExit(main())
