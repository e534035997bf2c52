"""A job's rows judged and planned, before anything is stored: the pure part of POST /jobs.

Each row becomes the notification ``POST /notifications`` would make of the template and the row's
personalisation, planned by the same ``plan_notification`` (channels, preferences and
suppressions, quiet hours, rendering, the channels' limits), or the row's errors: an address
given directly that a recipient's could not be (the recipient schema's validators), a name that
is no registered recipient's, a row with more or fewer cells than the header, anything the plan
refuses (an SMS too long for this row's personalisation). Rows are numbered as a spreadsheet
shows them (the header is row 1).

What is wrong with every row alike is refused once, for the file: a template placeholder no
column fills (``Missing column headers: first_name``), two columns filling one placeholder, and
``send_at`` out of bounds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Set
from dataclasses import dataclass, field
from datetime import datetime

from gateway.content.rendering import CompiledTemplate, placeholder_key
from gateway.errors import ApiError, BadRequestError
from gateway.jobs.csv_file import ADDRESS_COLUMNS, RECIPIENT_COLUMN, JobFile, spreadsheet_row
from gateway.notifications.plan import Plan, RecipientRecord, plan_notification
from gateway.notifications.schemas import NotificationCreate
from gateway.recipients.schemas import CONTACT_VALIDATORS
from shared.channels import CHANNEL_NAMES, Channel

# How many row errors an answer lists (the message counts them all).
MAX_LISTED_ERRORS = 100

@dataclass(frozen=True, slots=True)
class RowError:
    row: int  # as a spreadsheet numbers it
    column: str | None  # the column at fault, when one is
    message: str


@dataclass(slots=True)
class PlannedRow:
    recipient: RecipientRecord
    plan: Plan


@dataclass(slots=True)
class PlannedRows:
    """The plans of the rows without errors (in order), the rows' errors, and what the planned
    rows would send (a dry run reports it beside the errors; a job is stored only without any)."""

    planned: list[PlannedRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    error_rows: int = 0  # how many rows have an error
    channels: Counter[str] = field(default_factory=Counter)  # deliveries that would be published, by channel
    sms_fragments: int = 0


def check_columns(file: JobFile, template: CompiledTemplate) -> dict[str, str]:
    """The placeholders' columns (placeholder key -> column), or the 400 for the whole file: a
    placeholder no column fills, or one filled by two columns."""
    columns: dict[str, str] = {}
    for column in file.personalisation_columns:
        key = placeholder_key(column)
        if key in columns and any(placeholder.key == key for placeholder in template.placeholders):
            raise BadRequestError(f"the columns {columns[key]!r} and {column!r} both fill the placeholder (({column}))")
        columns.setdefault(key, column)
    missing = [placeholder.name for placeholder in template.placeholders if placeholder.key not in columns]
    if missing:
        raise BadRequestError(f"Missing column headers: {', '.join(missing)}")
    return {placeholder.key: columns[placeholder.key] for placeholder in template.placeholders}


def recipient_names(file: JobFile) -> list[str]:
    """Each row's recipient (a file with a recipient column)."""
    position = file.columns.index(RECIPIENT_COLUMN)
    return [cells[position].strip() for cells in file.rows]


def addressed_recipients(file: JobFile) -> list[RecipientRecord | RowError]:
    """Each row's addresses (a file with address columns), validated as a recipient's are, as the
    recipient the row is sent to (named by its first address), or the row's first error."""
    positions = [(column, file.columns.index(column)) for column in ADDRESS_COLUMNS if column in file.columns]
    recipients: list[RecipientRecord | RowError] = []
    # Lists repeat addresses (one person on several rows, a shared mailbox or phone): each value
    # is validated once per file. Per column: value -> (normalised, None) or (None, the refusal).
    verdicts: dict[str, dict[str, tuple[str | None, str | None]]] = {column: {} for column, _ in positions}
    for index, cells in enumerate(file.rows):
        contacts: dict[str, str | None] = dict.fromkeys(ADDRESS_COLUMNS)
        error = None
        for column, position in positions:
            value = cells[position].strip()
            if not value:
                continue  # blank: not set, as a recipient's blank contact
            verdict = verdicts[column].get(value)
            if verdict is None:
                try:
                    verdict = (CONTACT_VALIDATORS[column](value), None)
                except ValueError as exc:
                    verdict = (None, str(exc))
                verdicts[column][value] = verdict
            normalised, refusal = verdict
            if refusal is not None:
                error = RowError(spreadsheet_row(index), column, refusal)
                break
            contacts[column] = normalised
        if error is None and not any(contacts.values()):
            error = RowError(spreadsheet_row(index), None, f"the row has no address: give {' or '.join(column for column, _ in positions)}")
        if error is not None:
            recipients.append(error)
            continue
        name = next(value for value in contacts.values() if value)
        recipients.append(RecipientRecord(name, contacts["phone_number"], contacts["email"], contacts["slack_id"]))
    return recipients


def plan_rows(
    file: JobFile,
    template: CompiledTemplate,
    recipients: list[RecipientRecord | RowError | None],
    *,
    placeholder_columns: dict[str, str],
    send_at: datetime | None,
    critical_categories: Set[str],
    now: datetime,
) -> PlannedRows:
    """Plan every row (``recipients``: each row's, None for a name no recipient has); the file's
    400 when ``send_at`` is refused (it is every row's)."""
    result = PlannedRows()
    positions = {column: file.columns.index(column) for column in placeholder_columns.values()}
    names = recipient_names(file) if not file.by_address else None
    # Every row's request differs from this one in its recipient and personalisation only; a
    # copy costs half what model_construct does (defaults filled again), 50,000 times.
    request_of_every_row = NotificationCreate.model_construct(template=template.name, template_version=template.version, send_at=send_at)
    for index, (cells, recipient) in enumerate(zip(file.rows, recipients, strict=True)):
        row = spreadsheet_row(index)
        row_errors: list[RowError] = []
        if row in file.ragged:
            row_errors.append(RowError(row, None, f"the row has {file.ragged[row]} cells; the header has {len(file.columns)}"))
        if isinstance(recipient, RowError):
            row_errors.append(recipient)
        elif recipient is None:
            assert names is not None
            name = names[index]
            row_errors.append(RowError(row, RECIPIENT_COLUMN, f"unknown recipient: {name!r}" if name else "the row has no recipient"))
        if row_errors:
            _add_errors(result, row_errors)
            continue
        assert isinstance(recipient, RecipientRecord)
        request = request_of_every_row.model_copy(
            update={"recipient": recipient.name, "personalisation": {column: cells[position] for column, position in positions.items()}}
        )
        try:
            plan = plan_notification(request, recipient=recipient, template=template, critical_categories=critical_categories, now=now)
        except ApiError as refusal:
            if refusal.field == "send_at":
                raise  # every row's: the request's
            _add_errors(result, [RowError(row, RECIPIENT_COLUMN if refusal.field == "recipient" else None, refusal.message)])
            continue
        result.planned.append(PlannedRow(recipient, plan))
        result.channels.update(plan.published)
        if Channel.SMS in plan.published and plan.sms is not None:
            result.sms_fragments += plan.sms.fragments
    return result


def channel_counts(counts: Counter[str]) -> dict[str, int]:
    """Per channel (every one, in the API's order): how many deliveries."""
    return {channel: counts.get(channel, 0) for channel in CHANNEL_NAMES}


def _add_errors(result: PlannedRows, errors: list[RowError]) -> None:
    result.error_rows += 1
    room = MAX_LISTED_ERRORS - len(result.errors)
    result.errors.extend(errors[: max(room, 0)])
