"""A job's CSV as uploaded: decoded, split into a header and rows, and its columns judged.

UTF-8 with or without a BOM, comma separated, the header row first. The columns say who each row
is for: ``recipient`` (a registered recipient's name), or any of ``phone_number``, ``email`` and
``slack_id`` (addresses given directly); every other column is personalisation. What is wrong with
the file as a whole (not UTF-8, no header, no rows, too many rows, a column named twice, no
column saying who a row is for) is a 400 here, before any row is looked at; what is wrong with a
row is the row's error (``gateway/jobs/rows.py``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from gateway.errors import BadRequestError
from shared.channels import CONTACT_FIELDS

MAX_ROWS = 50_000
RECIPIENT_COLUMN = "recipient"
ADDRESS_COLUMNS = tuple(CONTACT_FIELDS)  # phone_number, email, slack_id
# Cells this long are no recipient's, address or personalisation; the csv module's own limit
# (128 KiB) would raise an error of its own.
MAX_CELL_CHARACTERS = 10_000


@dataclass(frozen=True, slots=True)
class JobFile:
    """The CSV's header (stripped of surrounding blanks) and its rows, each as many cells as the header."""

    columns: tuple[str, ...]
    rows: list[list[str]]
    # Rows whose number of cells differs from the header's: (spreadsheet row number, cells).
    ragged: dict[int, int]

    @property
    def by_address(self) -> bool:
        """Whether the rows give addresses directly rather than a registered recipient's name."""
        return RECIPIENT_COLUMN not in self.columns

    @property
    def personalisation_columns(self) -> tuple[str, ...]:
        return tuple(column for column in self.columns if column != RECIPIENT_COLUMN and column not in ADDRESS_COLUMNS)


def spreadsheet_row(index: int) -> int:
    """The row number a spreadsheet shows for data row ``index`` (0-based): the header is row 1."""
    return index + 2


def parse_job_file(body: bytes) -> JobFile:
    """The CSV ``body`` as a JobFile, or the 400 that refuses the whole file."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequestError(f"the CSV is not UTF-8 text (byte {exc.start + 1} is not UTF-8)") from None
    if "\x00" in text:
        raise BadRequestError("the CSV holds a NUL character, which no cell may hold")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise BadRequestError("the CSV is empty: its first row must be the column headers")
        columns = tuple(cell.strip() for cell in header)
        _check_columns(columns)
        rows: list[list[str]] = []
        ragged: dict[int, int] = {}
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue  # a blank line, as spreadsheets write at the end
            if len(rows) == MAX_ROWS:
                raise BadRequestError(f"the CSV has more than {MAX_ROWS:,} rows; a job takes at most {MAX_ROWS:,}")
            if len(cells) != len(columns):
                ragged[spreadsheet_row(len(rows))] = len(cells)
                cells = (cells + [""] * len(columns))[: len(columns)]
            if any(len(cell) > MAX_CELL_CHARACTERS for cell in cells):
                raise BadRequestError(
                    f"row {spreadsheet_row(len(rows))} has a cell longer than {MAX_CELL_CHARACTERS:,} characters"
                )
            rows.append(cells)
    except csv.Error as exc:
        raise BadRequestError(f"the CSV cannot be read at line {reader.line_num}: {exc}") from None
    if not rows:
        raise BadRequestError("the CSV has a header but no rows")
    return JobFile(columns, rows, ragged)


def _check_columns(columns: tuple[str, ...]) -> None:
    if any(not column for column in columns):
        position = next(index for index, column in enumerate(columns) if not column) + 1
        raise BadRequestError(f"column {position} of the header has no name")
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            raise BadRequestError(f"the header names the column {column!r} twice")
        seen.add(column)
    addresses = [column for column in columns if column in ADDRESS_COLUMNS]
    if RECIPIENT_COLUMN in seen and addresses:
        raise BadRequestError(
            f"give either a recipient column or address columns ({', '.join(ADDRESS_COLUMNS)}), not both; "
            f"this header has recipient and {', '.join(addresses)}"
        )
    if RECIPIENT_COLUMN not in seen and not addresses:
        raise BadRequestError(f"Missing column headers: {RECIPIENT_COLUMN} (or one of {', '.join(ADDRESS_COLUMNS)})")
