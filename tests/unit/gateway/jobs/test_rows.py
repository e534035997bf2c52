"""The pure part of POST /jobs: reading the CSV and judging and planning its rows."""

from __future__ import annotations

import codecs
from datetime import UTC, datetime, timedelta

import pytest

from gateway.content.rendering import CompiledTemplate
from gateway.errors import BadRequestError
from gateway.jobs.csv_file import parse_job_file
from gateway.jobs.rows import RowError, addressed_recipients, check_columns, plan_rows
from gateway.notifications.plan import RecipientRecord
from gateway.recipients.schemas import CONTACT_VALIDATORS

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
TEMPLATE = CompiledTemplate.compile(
    name="t", version=2, content={"sms": "Hi ((First Name))", "email": {"subject": "s", "body": "b"}}, category=None
)


def planned(csv: str, **options: object):  # noqa: ANN201
    file = parse_job_file(csv.encode())
    return plan_rows(
        file, TEMPLATE, addressed_recipients(file), placeholder_columns=check_columns(file, TEMPLATE),
        send_at=options.get("send_at"), critical_categories=set(), now=NOW,
    )


class TestParseJobFile:
    def test_a_bom_and_blank_lines_are_not_rows(self) -> None:
        file = parse_job_file(codecs.BOM_UTF8 + b" email , name\r\na@example.com,A\r\n\r\n")
        assert file.columns == ("email", "name")
        assert file.rows == [["a@example.com", "A"]]
        assert file.by_address and file.personalisation_columns == ("name",)

    def test_ragged_rows_are_noted_by_spreadsheet_row(self) -> None:
        file = parse_job_file(b"email,name\na@example.com\nb@example.com,B,extra\n")
        assert file.ragged == {2: 1, 3: 3}
        assert all(len(row) == 2 for row in file.rows)

    @pytest.mark.parametrize("body", [b"\xff\xfe", b"email\x00\n", b"", b"email\n"])
    def test_refused_whole(self, body: bytes) -> None:
        with pytest.raises(BadRequestError):
            parse_job_file(body)


class TestCheckColumns:
    def test_placeholders_match_columns_as_personalisation_keys_do(self) -> None:
        file = parse_job_file(b"email,first_name\na@example.com,A\n")
        assert check_columns(file, TEMPLATE) == {"firstname": "first_name"}

    def test_a_missing_column_names_the_placeholder(self) -> None:
        with pytest.raises(BadRequestError, match="^Missing column headers: First Name$"):
            check_columns(parse_job_file(b"email,last\na@example.com,A\n"), TEMPLATE)

    def test_two_columns_for_one_placeholder(self) -> None:
        with pytest.raises(BadRequestError, match="both fill"):
            check_columns(parse_job_file(b"email,first name,First_Name\na@example.com,A,B\n"), TEMPLATE)


class TestAddressedRecipients:
    def test_a_repeated_value_is_validated_once_and_judged_alike(self, monkeypatch: pytest.MonkeyPatch) -> None:
        validated: list[str] = []
        phone_number = CONTACT_VALIDATORS["phone_number"]

        def counted(value: str) -> str:
            validated.append(value)
            return phone_number(value)

        monkeypatch.setitem(CONTACT_VALIDATORS, "phone_number", counted)
        file = parse_job_file(b"phone_number\n+14155552671\n+14155552671\n+1000\n +1000\n")
        recipients = addressed_recipients(file)
        assert validated == ["+14155552671", "+1000"]
        assert recipients[0] == recipients[1] == RecipientRecord("+14155552671", "+14155552671", None, None)
        assert isinstance(recipients[2], RowError) and isinstance(recipients[3], RowError)
        assert (recipients[2].row, recipients[3].row) == (4, 5)
        assert recipients[2].message == recipients[3].message
        assert "not a valid number" in recipients[2].message or "E.164" in recipients[2].message


class TestPlanRows:
    def test_each_row_planned_on_its_channels_and_counted(self) -> None:
        result = planned("phone_number,email,first name\n+14155552671,a@example.com,Ada\n,b@example.com,Bob\n")
        assert result.errors == []
        assert [row.plan.published for row in result.planned] == [["sms", "email"], ["email"]]
        assert dict(result.channels) == {"sms": 1, "email": 2}
        assert result.sms_fragments == 1
        assert result.planned[0].recipient == RecipientRecord("+14155552671", "+14155552671", "a@example.com", None)

    def test_row_errors_are_counted_and_listed(self) -> None:
        result = planned("email,first name\nbad,A\n,B\nc@example.com,C\n")
        assert result.error_rows == 2
        assert [(error.row, error.column) for error in result.errors] == [(2, "email"), (3, None)]
        assert len(result.planned) == 1

    def test_send_at_out_of_bounds_is_the_requests_error(self) -> None:
        with pytest.raises(BadRequestError, match="send_at is in the past"):
            planned("email,first name\na@example.com,A\n", send_at=NOW - timedelta(hours=1))
