"""Routes for /jobs: POST (a CSV sent with a template, or its dry run), GET /{job_id} (its
progress), GET /{job_id}/notifications (its rows' notifications), GET (the client's jobs) and
POST /{job_id}/cancel. Thin: the file is read and judged in ``csv_file.py`` and ``rows.py``, the
logic is in the service."""

from __future__ import annotations

import email.message
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from gateway.auth import NotificationsClient
from gateway.deps import Connection
from gateway.errors import ApiError, BadRequestError, ErrorBody, invalid_input
from gateway.jobs.csv_file import MAX_ROWS
from gateway.jobs.schemas import (
    JOB_NAME,
    JobDryRun,
    JobNotificationPage,
    JobPage,
    JobProgress,
    JobPublic,
    JobRefusal,
    SendAt,
)
from gateway.jobs.service import JobService
from gateway.pagination import Cursor, Limit
from gateway.recipients.schemas import NAME_PATTERN
from gateway.text import ecma_pattern
from shared.statuses import DeliveryStatus

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {400: {"model": ErrorBody}, 403: {"model": ErrorBody}, 429: {"model": ErrorBody}}

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=ERROR_RESPONSES)

CSV_MEDIA_TYPE = "text/csv"
# Paths whose bodies carry many notifications (GATEWAY_MAX_BULK_BODY_BYTES: 20 MB by default).
JOB_PATHS = frozenset({"/jobs"})


class UnsupportedMediaTypeError(ApiError):
    status_code = 415


async def job_service(request: Request) -> JobService:
    return request.app.state.jobs


Jobs = Annotated[JobService, Depends(job_service)]


@router.post(
    "",
    status_code=201,
    response_model=JobPublic,
    response_model_exclude_none=True,
    responses={
        200: {"model": JobDryRun, "description": "dry_run=true: what the job would send; nothing is stored."},
        400: {"model": JobRefusal, "description": "The file, or rows of it, have errors (listed); nothing is stored."},
        415: {"model": ErrorBody, "description": "The body is not text/csv."},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": f"UTF-8 (a BOM is fine), comma separated, the header row first; up to {MAX_ROWS:,} rows and 20 MB. "
            "Columns: recipient (a registered name) or any of phone_number, email, slack_id; every other column is personalisation.",
            "content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}, "example": "recipient,first_name\njane,Jane\n"}},
        }
    },
)
async def post_job(
    request: Request,
    client: NotificationsClient,
    jobs: Jobs,
    template: Annotated[
        str, Query(max_length=128, json_schema_extra={"pattern": ecma_pattern(NAME_PATTERN.pattern)}, description="The template to send.")
    ],
    name: Annotated[str | None, Query(**JOB_NAME, description="The job's name; default: the template's.")] = None,
    send_at: Annotated[
        str | None,
        Query(
            description="Send it then: ISO 8601 with a UTC offset, up to 7 days ahead.", max_length=64, json_schema_extra={"format": "date-time"}
        ),
    ] = None,
    dry_run: Annotated[bool, Query(description="Validate and report what would be sent; store nothing.")] = False,
) -> Any:
    """Send a template to every row of a CSV: validated whole before anything is stored."""
    _require_csv(request.headers.get("content-type"))
    body = await request.body()
    outcome = await jobs.create(body, template=template, name=name, send_at=_send_at(send_at), dry_run=dry_run, client=client)
    if isinstance(outcome, JobDryRun):
        return JSONResponse(outcome.model_dump(mode="json"), status_code=200)
    return outcome


@router.get("", response_model=JobPage, response_model_exclude_none=True)
async def list_jobs(request: Request, connection: Connection, client: NotificationsClient, jobs: Jobs, cursor: Cursor = None, limit: Limit = None) -> JobPage:
    """This client's jobs, oldest first, a page at a time."""
    return await jobs.list_page(connection, client=client, cursor=cursor, limit=limit or request.app.state.settings.recipients_page_size)


@router.get("/{job_id}", response_model=JobProgress, response_model_exclude_none=True, responses={404: {"model": ErrorBody}})
async def get_job(job_id: UUID, connection: Connection, client: NotificationsClient, jobs: Jobs) -> JobProgress:
    """A job of this client, with its deliveries counted per channel and status."""
    return await jobs.get(connection, job_id=job_id, client=client)


@router.get(
    "/{job_id}/notifications", response_model=JobNotificationPage, response_model_exclude_none=True, responses={404: {"model": ErrorBody}}
)
async def list_job_notifications(
    request: Request,
    job_id: UUID,
    connection: Connection,
    client: NotificationsClient,
    jobs: Jobs,
    status: Annotated[DeliveryStatus | None, Query(description="Only notifications with a delivery in this status.")] = None,
    cursor: Cursor = None,
    limit: Limit = None,
) -> JobNotificationPage:
    """The notifications of a job of this client (one per row), in row order, a page at a time."""
    return await jobs.notifications_page(
        connection,
        job_id=job_id,
        client=client,
        status=status,
        cursor=cursor,
        limit=limit or request.app.state.settings.recipients_page_size,
    )


@router.post(
    "/{job_id}/cancel",
    response_model=JobProgress,
    response_model_exclude_none=True,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody, "description": "Already released: every delivery was published."}},
)
async def cancel_job(job_id: UUID, connection: Connection, client: NotificationsClient, jobs: Jobs) -> JobProgress:
    """Cancel what is not yet released of a job of this client; what was released goes on."""
    return await jobs.cancel(connection, job_id=job_id, client=client)


def _require_csv(content_type: str | None) -> None:
    parsed = email.message.Message()
    parsed["content-type"] = content_type or ""
    if content_type is None or parsed.get_content_type() != CSV_MEDIA_TYPE:
        raise UnsupportedMediaTypeError(f"the body must be a CSV file, sent with Content-Type: {CSV_MEDIA_TYPE}")
    charset = parsed.get_param("charset")
    if isinstance(charset, str) and charset.lower().replace("-", "") not in ("utf8", "usascii"):
        raise UnsupportedMediaTypeError(f"the CSV must be UTF-8; the Content-Type says charset={charset}")


def _send_at(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return SendAt.validate_python(value)
    except ValidationError as exc:
        refusal = invalid_input(exc, "query", "send_at")
        raise BadRequestError(refusal.message, field="send_at") from None
