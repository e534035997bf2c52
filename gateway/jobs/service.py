"""CSV jobs: one template sent to every row of an uploaded CSV.

``JobService.create`` (POST /jobs) reads the file (``csv_file.py``), reads the template's latest
version and each row's recipient (registered recipients by name in one statement, as every accept
reads them; addresses given directly are validated as a recipient's and looked up on the
suppression list in one statement), and plans every row as a notification (``rows.py``). The
CPU-bound work on up to 50,000 rows (parsing, validating, planning, making the notifications to
store) runs in worker threads, so the gateway's event loop keeps answering other requests
meanwhile. Everything is validated before anything is stored: any row error refuses the job (400
listing them) and a dry run answers what would be sent, storing nothing.

A job is stored in one transaction: its ``jobs`` row, then its rows as notifications by the
accept statement every notification takes (``NotificationRepository.accept``), a chunk of
``STORE_CHUNK_ROWS`` per statement, on the bulk lane (``bulk``: the channels'
``*_bulk_notifications`` queues, so a one-off never waits behind a job). None is published by
the gateway at once: every row is stored scheduled, its outbox row due at its release time, and
the outbox relay releases them when due, a batch per pass, as it releases scheduled
notifications. Release times are staggered: the job's start (its ``send_at``, or now) plus, for
the k-th chunk of ``release_chunk_rows`` rows, k chunks' worth of ``release_rows_per_second``;
so a 50,000-row job never puts 50,000 due rows in front of a scheduled one-off in the relay, and
the rows not yet released can be cancelled (POST /jobs/{id}/cancel: the scheduled-cancel
statement of POST /notifications/{id}/cancel, for all of a job's notifications). A row in its
recipient's quiet hours is released when they end, if that is later.

A job's ``status`` is worked out when it is read (``job_status``) from its deliveries' counts.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable, Set
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from gateway.auth import ClientIdentity
from gateway.errors import BadRequestError, ConflictError, NotFoundError
from gateway.jobs.csv_file import JobFile, parse_job_file
from gateway.jobs.repository import JobRepository
from gateway.jobs.rows import PlannedRows, RowError, addressed_recipients, channel_counts, check_columns, plan_rows, recipient_names
from gateway.jobs.schemas import (
    ChannelCounts,
    JobDryRun,
    JobNotificationPage,
    JobPage,
    JobProgress,
    JobPublic,
    JobStatus,
    RowErrorPublic,
)
from gateway.notifications.plan import RecipientRecord
from gateway.notifications.repository import NewNotification, NotificationRepository
from gateway.notifications.schemas import TemplateReference
from gateway.notifications.service import uuid7
from gateway.notifications.stored import StoredNotification
from gateway.pagination import decode_cursor_text, encode_cursor, foreign_cursor
from gateway.templates.service import TemplateService, refuse_unknown_template
from shared.channels import CHANNELS
from shared.database import Database
from shared.logging import get_logger
from shared.statuses import FINAL_STATUSES, DeliveryStatus

log = get_logger(__name__)

# Notifications per accept statement while a job is stored: large enough that 50,000 rows are a
# few dozen round trips, small enough that each statement's arrays stay a few MB.
STORE_CHUNK_ROWS = 2_000

Counts = dict[str, dict[str, int]]  # channel -> delivery status -> deliveries


class JobService:
    def __init__(
        self,
        *,
        database: Database,
        templates: TemplateService,
        critical_categories: Set[str],
        release_rows_per_second: float,
        release_chunk_rows: int,
        on_scheduled: Callable[[datetime], None] = lambda _release_at: None,
        repository: JobRepository | None = None,
        notifications: NotificationRepository | None = None,
    ) -> None:
        self._database = database
        self._templates = templates
        self._critical_categories = frozenset(critical_categories)
        self._release_rows_per_second = release_rows_per_second
        self._release_chunk_rows = release_chunk_rows
        self._on_scheduled = on_scheduled
        self._repository = repository or JobRepository()
        self._notifications = notifications or NotificationRepository()

    async def create(
        self, body: bytes, *, template: str, name: str | None, send_at: datetime | None, dry_run: bool, client: ClientIdentity
    ) -> JobDryRun | JobPublic:
        """POST /jobs (see the module docstring): the dry run's report, or the stored job."""
        file = await asyncio.to_thread(parse_job_file, body)
        async with self._database.connection() as connection:
            compiled = await self._templates.latest_compiled(connection, name=template)
            if compiled is None:
                raise refuse_unknown_template(template)
            placeholder_columns = check_columns(file, compiled)
            recipients = await self._recipients(connection, file)
            now = datetime.now(UTC)
            planned = await asyncio.to_thread(
                plan_rows,
                file,
                compiled,
                recipients,
                placeholder_columns=placeholder_columns,
                send_at=send_at,
                critical_categories=self._critical_categories,
                now=now,
            )
            errors = [RowErrorPublic(row=error.row, column=error.column, message=error.message) for error in planned.errors]
            if dry_run:
                return JobDryRun(
                    rows=len(file.rows),
                    channels=ChannelCounts(**channel_counts(planned.channels)),
                    sms_fragments=planned.sms_fragments,
                    errors=errors,
                )
            if planned.error_rows:
                raise BadRequestError(
                    f"{planned.error_rows} rows have errors", details={"errors": [error.model_dump() for error in errors]}
                )
            job_id = uuid7()
            notifications, counts = await asyncio.to_thread(
                self._notifications_of, job_id, planned, template=compiled.name, version=compiled.version, send_at=send_at, client=client, now=now
            )
            async with connection.transaction():
                job = await self._repository.insert(
                    connection,
                    id=job_id,
                    client=client.common_name,
                    name=name or compiled.name,
                    template=compiled.name,
                    template_version=compiled.version,
                    rows=len(notifications),
                    send_at=send_at,
                )
                for start in range(0, len(notifications), STORE_CHUNK_ROWS):
                    await self._notifications.accept(connection, notifications[start : start + STORE_CHUNK_ROWS], outbox_grace_seconds=0)
        first_release = min((item.plan.release_at for item in notifications if item.plan.release_at is not None), default=None)
        if first_release is not None:
            self._on_scheduled(first_release)
        log.info("job_created", job_id=str(job_id), client=client.common_name, rows=len(notifications), template=compiled.name)
        return _public(job, counts, JobPublic)

    async def _recipients(self, connection: asyncpg.Connection, file: JobFile) -> list[RecipientRecord | RowError | None]:
        """Each row's recipient: a registered one by name (None: unknown), or the addresses given
        (validated, with their suppressions), or the row's error."""
        if not file.by_address:
            inputs = await self._notifications.plan_inputs(connection, [(name, None) for name in recipient_names(file)])
            return [found.recipient for found in inputs]
        recipients, addresses = await asyncio.to_thread(_addressed_with_addresses, file)
        suppressed = await self._repository.suppressed(connection, addresses)
        if suppressed:
            await asyncio.to_thread(_mark_suppressed, recipients, suppressed)
        return recipients

    def _notifications_of(
        self,
        job_id: uuid.UUID,
        planned: PlannedRows,
        *,
        template: str,
        version: int,
        send_at: datetime | None,
        client: ClientIdentity,
        now: datetime,
    ) -> tuple[list[NewNotification], Counts]:
        """The job's rows as notifications to store, each released at its staggered time (see the
        module docstring), and the deliveries they make by channel and status."""
        start = send_at if send_at is not None and send_at > now else now
        chunk_seconds = self._release_chunk_rows / self._release_rows_per_second
        notifications = []
        for index, row in enumerate(planned.planned):
            plan = row.plan
            if plan.published:
                staggered = start + timedelta(seconds=(index // self._release_chunk_rows) * chunk_seconds)
                plan.release_at = max(plan.release_at, staggered) if plan.release_at is not None else staggered
            notifications.append(
                NewNotification(
                    id=uuid7(),
                    recipient=row.recipient,
                    message=None,
                    subject=None,
                    content=plan.content_json,
                    template=template,
                    template_version=version,
                    plan=plan,
                    client=client.common_name,
                    client_serial=client.serial,
                    idempotency_key=None,
                    request_hash=None,
                    send_at=send_at,
                    bulk=True,
                    job_id=job_id,
                )
            )
        return notifications, _planned_counts(notifications)

    async def get(self, connection: asyncpg.Connection, *, job_id: uuid.UUID, client: ClientIdentity) -> JobProgress:
        """The job with its deliveries' counts, when ``client`` created it; another client's is an unknown id's 404."""
        job = await self._job(connection, job_id=job_id, client=client)
        counts = await self._repository.counts(connection, [job_id])
        return _public(job, counts[job_id], JobProgress)

    async def list_page(self, connection: asyncpg.Connection, *, client: ClientIdentity, cursor: str | None, limit: int) -> JobPage:
        after = _decode_id_cursor(cursor) if cursor else None
        rows = await self._repository.page(connection, client=client.common_name, after=after, limit=limit + 1)
        page, more = rows[:limit], len(rows) > limit
        counts = await self._repository.counts(connection, [row["id"] for row in page]) if page else {}
        return JobPage(
            items=[_public(row, counts[row["id"]], JobProgress) for row in page],
            next_cursor=encode_cursor(str(page[-1]["id"])) if more else None,
        )

    async def notifications_page(
        self,
        connection: asyncpg.Connection,
        *,
        job_id: uuid.UUID,
        client: ClientIdentity,
        status: DeliveryStatus | None,
        cursor: str | None,
        limit: int,
    ) -> JobNotificationPage:
        await self._job(connection, job_id=job_id, client=client)
        after = _decode_id_cursor(cursor) if cursor else None
        rows = await self._notifications.job_page(
            connection, job_id=job_id, after=after, status=status.value if status is not None else None, limit=limit + 1
        )
        page, more = rows[:limit], len(rows) > limit
        return JobNotificationPage(
            items=[StoredNotification.from_row(row).public(published=row["published"], deliveries=row["deliveries"]) for row in page],
            next_cursor=encode_cursor(str(page[-1]["id"])) if more else None,
        )

    async def cancel(self, connection: asyncpg.Connection, *, job_id: uuid.UUID, client: ClientIdentity) -> JobProgress:
        """Cancel every delivery of the job not yet released (they become ``cancelled``; those
        released go on); 409 when every one was released already. Cancelling a cancelled job
        answers it again."""
        job = await self._job(connection, job_id=job_id, client=client)
        cancelled = await self._notifications.cancel_scheduled_of_job(connection, job_id=job_id)
        if not cancelled and job["cancelled_at"] is None:
            raise ConflictError("already released")
        if cancelled:
            log.info("job_cancelled", job_id=str(job_id), client=client.common_name, deliveries=cancelled)
        job = await self._repository.mark_cancelled(connection, job_id=job_id)
        counts = await self._repository.counts(connection, [job_id])
        return _public(job, counts[job_id], JobProgress)

    async def _job(self, connection: asyncpg.Connection, *, job_id: uuid.UUID, client: ClientIdentity) -> asyncpg.Record:
        job = await self._repository.get(connection, job_id=job_id, client=client.common_name)
        if job is None:
            raise NotFoundError(f"no job with id {job_id}")
        return job


def _addressed_with_addresses(file: JobFile) -> tuple[list[RecipientRecord | RowError | None], list[tuple[str, str]]]:
    """Each row's recipient (``addressed_recipients``) and every (channel, address) they have, to look up on the suppression list."""
    recipients: list[RecipientRecord | RowError | None] = list(addressed_recipients(file))
    addresses = {
        (spec.channel.value, address)
        for recipient in recipients
        if isinstance(recipient, RecipientRecord)
        for spec in CHANNELS
        if (address := getattr(recipient, spec.contact_field)) is not None
    }
    return recipients, sorted(addresses)


def _mark_suppressed(recipients: list[RecipientRecord | RowError | None], suppressed: dict[tuple[str, str], str]) -> None:
    """Note on each recipient which of its addresses are suppressed, and why."""
    for recipient in recipients:
        if isinstance(recipient, RecipientRecord):
            reasons = {
                spec.channel.value: suppressed[key]
                for spec in CHANNELS
                if (key := (spec.channel.value, getattr(recipient, spec.contact_field))) in suppressed
            }
            recipient.suppressed = reasons or None


def job_status(*, cancelled_at: datetime | None, send_at: datetime | None, counts: Counts, now: datetime) -> JobStatus:
    """``cancelled`` once cancelled; ``finished`` when every delivery is final; ``scheduled``
    while its send_at is ahead; else ``in_progress``."""
    if cancelled_at is not None:
        return JobStatus.CANCELLED
    if all(status in FINAL_STATUSES for statuses in counts.values() for status in statuses):
        return JobStatus.FINISHED
    if send_at is not None and send_at > now:
        return JobStatus.SCHEDULED
    return JobStatus.IN_PROGRESS


def _planned_counts(notifications: list[NewNotification]) -> Counts:
    """The counts of a job just stored: its deliveries scheduled, or skipped."""
    counted: Counter[tuple[str, str]] = Counter()
    for item in notifications:
        for channel in item.plan.channels:
            status = DeliveryStatus.SKIPPED if channel in item.plan.skipped else DeliveryStatus.SCHEDULED
            counted[(channel, status)] += 1
    counts: Counts = {}
    for (channel, status), deliveries in counted.items():
        counts.setdefault(channel, {})[status] = deliveries
    return counts


def _public(job: Any, counts: Counts, model: type[JobPublic]) -> Any:
    fields: dict[str, Any] = {
        "id": job["id"],
        "name": job["name"],
        "template": TemplateReference(name=job["template"], version=job["template_version"]),
        "rows": job["rows"],
        "status": job_status(cancelled_at=job["cancelled_at"], send_at=job["send_at"], counts=counts, now=datetime.now(UTC)),
        "created_at": job["created_at"],
        "send_at": job["send_at"],
        "cancelled_at": job["cancelled_at"],
    }
    if model is JobProgress:
        fields["counts"] = counts
    return model(**fields)


def _decode_id_cursor(cursor: str) -> uuid.UUID:
    try:
        return uuid.UUID(decode_cursor_text(cursor))
    except ValueError:
        raise foreign_cursor() from None
