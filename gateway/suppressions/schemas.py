"""Suppressions as the API shows them."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from shared.channels import Channel


class SuppressionPublic(BaseModel):
    channel: Channel
    address: str = Field(description="The suppressed email address or phone number, as the delivery was sent to it.")
    reason: str = Field(description="Why: the bounce, complaint or opt-out that suppressed it.")
    notification_id: UUID | None = Field(default=None, description="The notification whose receipt suppressed it.")
    created_at: datetime


class SuppressionPage(BaseModel):
    items: list[SuppressionPublic]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` to get the next page; absent on the last page.")
