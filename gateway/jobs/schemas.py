"""CSV jobs in and out of the API."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, Field, TypeAdapter

from gateway.errors import ErrorBody
from gateway.notifications.schemas import NotificationPublic, TemplateReference, _send_at
from gateway.text import STORABLE_PATTERN

MAX_JOB_NAME_CHARACTERS = 128
JOB_NAME = {"min_length": 1, "max_length": MAX_JOB_NAME_CHARACTERS, "pattern": STORABLE_PATTERN}
# send_at in the query: as POST /notifications's send_at is read.
SendAt = TypeAdapter(Annotated[datetime, BeforeValidator(_send_at)])


class JobStatus(StrEnum):
    SCHEDULED = "scheduled"  # its send_at is ahead
    IN_PROGRESS = "in_progress"  # being released and delivered
    FINISHED = "finished"  # every delivery is final
    CANCELLED = "cancelled"  # POST /jobs/{id}/cancel cancelled what was not yet released


class RowErrorPublic(BaseModel):
    row: int = Field(description="As a spreadsheet numbers it: the header is row 1.")
    column: str | None = Field(default=None, description="The column at fault, when one is.")
    message: str


class JobRefusal(ErrorBody):
    """400: the file, or rows of it, have errors; nothing was stored."""

    errors: list[RowErrorPublic] | None = Field(
        default=None, description='With "<n> rows have errors": the rows\' errors (the first 100).'
    )


class ChannelCounts(BaseModel):
    sms: int
    email: int
    slack: int


class JobDryRun(BaseModel):
    """What the job would send; nothing is stored."""

    rows: int
    channels: ChannelCounts = Field(description="Deliveries that would be sent, per channel (skipped ones not counted).")
    sms_fragments: int = Field(description="SMS messages the SMS deliveries would be sent as.")
    errors: list[RowErrorPublic] = Field(description="The rows' errors (the first 100); a job with any is refused.")


class JobPublic(BaseModel):
    id: UUID
    name: str
    template: TemplateReference
    rows: int
    status: JobStatus
    created_at: datetime
    send_at: datetime | None = Field(default=None, description="When the job was asked to be sent, in UTC.")
    cancelled_at: datetime | None = None


class JobProgress(JobPublic):
    counts: dict[str, dict[str, int]] = Field(description="Deliveries per channel and delivery status.")


class JobPage(BaseModel):
    items: list[JobProgress]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` to get the next page; absent on the last page.")


class JobNotificationPage(BaseModel):
    items: list[NotificationPublic]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` to get the next page; absent on the last page.")
