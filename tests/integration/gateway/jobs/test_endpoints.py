"""CSV jobs through the real gateway process, Postgres and moto: every validation error, the dry
run (nothing stored), a stored job read back, listed and cancelled, and another client's job a 404.

The jobs stored here are sent a day ahead, so nothing is released onto the session's queues
(other modules read them); their delivery is ``tests/integration/test_jobs_end_to_end.py``'s.
"""

from __future__ import annotations

import codecs
import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from harness.gateway import GatewayProcess
from harness.postgres import fetch

TOMORROW = (datetime.now(UTC) + timedelta(days=1)).isoformat()


@pytest.fixture(scope="module")
def names(gateway: GatewayProcess) -> dict[str, str]:
    """A template with a placeholder on every channel, and a registered recipient with every contact."""
    tag = secrets.token_hex(4)
    template, recipient = f"job-{tag}", f"job-ada-{tag}"
    with gateway.client() as client:
        assert client.put(
            f"/templates/{template}",
            json={"sms": "Hi ((first_name))", "email": {"subject": "For ((first_name))", "body": "Dear ((first_name))"}, "slack": "Hi ((first_name))"},
        ).status_code == 201
        assert client.put(
            f"/recipients/{recipient}", json={"phone_number": "+14155552671", "email": f"{recipient}@example.com", "slack_id": "U0ADA12345"}
        ).status_code == 204
    return {"template": template, "recipient": recipient}


def post_job(client: httpx.Client, csv: str | bytes, *, content_type: str = "text/csv", **params: Any) -> httpx.Response:
    body = csv.encode() if isinstance(csv, str) else csv
    return client.post("/jobs", params=params, content=body, headers={"Content-Type": content_type})


def job_rows(database_url: str, job_id: str) -> int:
    return fetch(database_url, "SELECT count(*) AS n FROM notifications WHERE job_id = $1", job_id)[0]["n"]


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with gateway.client() as opened:
        yield opened


class TestValidation:
    def test_a_missing_placeholder_column(self, client: httpx.Client, names: dict[str, str]) -> None:
        response = post_job(client, f"recipient,name\n{names['recipient']},Ada\n", template=names["template"])
        assert response.status_code == 400
        assert response.json()["message"] == "Missing column headers: first_name"

    @pytest.mark.parametrize(
        ("csv", "message"),
        [
            ("first_name\nAda\n", "Missing column headers: recipient (or one of phone_number, email, slack_id)"),
            ("recipient,email,first_name\na,a@example.com,Ada\n", "give either a recipient column or address columns"),
            ("recipient,first_name,first_name\na,b,c\n", "the header names the column 'first_name' twice"),
            ("recipient,,first_name\na,b,c\n", "column 2 of the header has no name"),
            ("", "the CSV is empty"),
            ("recipient,first_name\n", "the CSV has a header but no rows"),
            ('recipient,first_name\n"a,b\n', "the CSV cannot be read"),
        ],
        ids=["no-recipient-column", "both-kinds", "twice", "unnamed", "empty", "no-rows", "unterminated-quote"],
    )
    def test_a_file_refused_whole(self, client: httpx.Client, names: dict[str, str], csv: str, message: str) -> None:
        response = post_job(client, csv, template=names["template"])
        assert response.status_code == 400, response.text
        assert response.json()["message"].startswith(message), response.text

    def test_row_errors_are_listed_by_spreadsheet_row_and_nothing_is_stored(self, client: httpx.Client, names: dict[str, str], gateway: GatewayProcess) -> None:
        long_name = "ж" * 900  # UCS-2: 1,800 bytes and more once rendered, over the 1,600 SNS takes
        csv = (
            "phone_number,email,slack_id,first_name\n"
            "+14155552671,ok@example.com,U0ADA12345,Ada\n"  # row 2: fine
            ",not-an-email,,Bob\n"  # row 3
            "+1999,,,Cy\n"  # row 4
            ",,,Dee\n"  # row 5: no address
            f"+14155552671,,,{long_name}\n"  # row 6: SMS too long
            ",,lowercase,Eve\n"  # row 7
            "+14155552671,,\n"  # row 8: too few cells
        )
        before = fetch(gateway.database_url, "SELECT count(*) AS n FROM jobs")[0]["n"]
        response = post_job(client, csv, template=names["template"])
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["message"] == "6 rows have errors"
        by_row = {error["row"]: error for error in body["errors"]}
        assert sorted(by_row) == [3, 4, 5, 6, 7, 8]
        assert by_row[3]["column"] == "email" and "not a valid address" in by_row[3]["message"]
        assert by_row[4]["column"] == "phone_number" and "+1999" in by_row[4]["message"]
        assert by_row[5]["column"] is None and "no address" in by_row[5]["message"]
        assert by_row[6]["column"] is None and "too long for sms" in by_row[6]["message"]
        assert by_row[7]["column"] == "slack_id"
        assert "cells; the header has 4" in by_row[8]["message"]
        assert fetch(gateway.database_url, "SELECT count(*) AS n FROM jobs")[0]["n"] == before

    def test_an_unknown_recipient_is_a_row_error(self, client: httpx.Client, names: dict[str, str]) -> None:
        response = post_job(client, f"recipient,first_name\n{names['recipient']},Ada\nnobody-{secrets.token_hex(3)},Bob\n", template=names["template"])
        assert response.status_code == 400
        [error] = response.json()["errors"]
        assert (error["row"], error["column"]) == (3, "recipient")
        assert error["message"].startswith("unknown recipient: ")

    def test_only_the_first_100_errors_are_listed(self, client: httpx.Client, names: dict[str, str]) -> None:
        csv = "email,first_name\n" + "bad,x\n" * 150
        body = post_job(client, csv, template=names["template"]).json()
        assert body["message"] == "150 rows have errors"
        assert len(body["errors"]) == 100

    def test_too_many_rows(self, client: httpx.Client, names: dict[str, str]) -> None:
        csv = "email,first_name\n" + "a@example.com,x\n" * 50_001
        response = post_job(client, csv, template=names["template"])
        assert response.status_code == 400
        assert "a job takes at most 50,000" in response.json()["message"]

    def test_a_body_over_20_mb(self, client: httpx.Client, names: dict[str, str]) -> None:
        response = post_job(client, "email,first_name\n" + "a@example.com," + "x" * 21_000_000 + "\n", template=names["template"])
        assert response.status_code == 413
        assert "larger than 20971520 bytes" in response.json()["message"]

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({"template": "no-such-template"}, "template not found: no-such-template"),
            ({"send_at": "2026-12-02T09:00:00"}, "send_at needs a UTC offset"),
            ({"send_at": "2020-01-01T09:00:00+00:00"}, "send_at is in the past"),
            ({"send_at": (datetime.now(UTC) + timedelta(days=8)).isoformat()}, "send_at is more than 7 days ahead"),
        ],
        ids=["unknown-template", "no-offset", "past", "too-far"],
    )
    def test_the_request_refused(self, client: httpx.Client, names: dict[str, str], params: dict[str, str], message: str) -> None:
        response = post_job(client, f"recipient,first_name\n{names['recipient']},Ada\n", **{"template": names["template"], **params})
        assert response.status_code == 400, response.text
        assert response.json()["message"].startswith(message)

    def test_not_csv(self, client: httpx.Client, names: dict[str, str]) -> None:
        response = post_job(client, "{}", content_type="application/json", template=names["template"])
        assert response.status_code == 415
        assert "text/csv" in response.json()["message"]

    def test_not_utf8(self, client: httpx.Client, names: dict[str, str]) -> None:
        response = post_job(client, "recipient,first_name\nada,Jos\xe9\n".encode("latin-1"), template=names["template"])
        assert response.status_code == 400
        assert "not UTF-8" in response.json()["message"]


class TestDryRun:
    def test_it_counts_what_would_be_sent_and_stores_nothing(self, client: httpx.Client, names: dict[str, str], gateway: GatewayProcess) -> None:
        csv = codecs.BOM_UTF8 + (
            "phone_number,email,first_name\n+14155552671,a@example.com,Ada\n,b@example.com,Bob\n+14155552672,,Ωmega\nbad,,x\n"
        ).encode()
        before = fetch(gateway.database_url, "SELECT count(*) AS jobs, (SELECT count(*) FROM notifications) AS notifications FROM jobs")
        response = post_job(client, csv, template=names["template"], dry_run="true")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["rows"] == 4
        assert body["channels"] == {"sms": 2, "email": 2, "slack": 0}
        assert body["sms_fragments"] == 2
        assert [(error["row"], error["column"]) for error in body["errors"]] == [(5, "phone_number")]
        after = fetch(gateway.database_url, "SELECT count(*) AS jobs, (SELECT count(*) FROM notifications) AS notifications FROM jobs")
        assert after == before


class TestStoredJob:
    def test_created_read_listed_paged_and_cancelled(self, client: httpx.Client, names: dict[str, str], gateway: GatewayProcess) -> None:
        csv = "recipient,first_name\n" + f"{names['recipient']},Ada\n" * 3
        response = post_job(client, csv, template=names["template"], name="December", send_at=TOMORROW)
        assert response.status_code == 201, response.text
        job = response.json()
        assert job["name"] == "December"
        assert job["template"] == {"name": names["template"], "version": 1}
        assert (job["rows"], job["status"]) == (3, "scheduled")
        assert job["send_at"] and job["created_at"]
        assert job_rows(gateway.database_url, job["id"]) == 3

        progress = client.get(f"/jobs/{job['id']}").json()
        assert progress["counts"] == {"sms": {"scheduled": 3}, "email": {"scheduled": 3}, "slack": {"scheduled": 3}}
        assert job["id"] in [item["id"] for item in client.get("/jobs", params={"limit": 1000}).json()["items"]]

        first = client.get(f"/jobs/{job['id']}/notifications", params={"limit": 2}).json()
        assert len(first["items"]) == 2 and first["next_cursor"]
        rest = client.get(f"/jobs/{job['id']}/notifications", params={"limit": 2, "cursor": first["next_cursor"]}).json()
        assert len(rest["items"]) == 1 and "next_cursor" not in rest
        notification = first["items"][0]
        assert notification["job_id"] == job["id"]
        assert notification["deliveries"]["sms"]["status"] == "scheduled"
        assert client.get(f"/notifications/{notification['id']}").json()["job_id"] == job["id"]
        assert client.get(f"/jobs/{job['id']}/notifications", params={"status": "sent"}).json()["items"] == []

        cancelled = client.post(f"/jobs/{job['id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        assert cancelled.json()["counts"] == {"sms": {"cancelled": 3}, "email": {"cancelled": 3}, "slack": {"cancelled": 3}}
        assert client.post(f"/jobs/{job['id']}/cancel").status_code == 200  # again: answered as it is
        assert fetch(gateway.database_url, "SELECT count(*) AS n FROM outbox o JOIN notifications n ON n.id = o.notification_id WHERE n.job_id = $1", job["id"])[0]["n"] == 0

    def test_another_clients_job_is_a_404(self, client: httpx.Client, names: dict[str, str], gateway: GatewayProcess) -> None:
        job = post_job(client, f"recipient,first_name\n{names['recipient']},Ada\n", template=names["template"], send_at=TOMORROW).json()
        with gateway.client("acme-billing") as other:
            for response in (
                other.get(f"/jobs/{job['id']}"),
                other.get(f"/jobs/{job['id']}/notifications"),
                other.post(f"/jobs/{job['id']}/cancel"),
            ):
                assert response.status_code == 404, response.text
                assert response.json()["message"] == f"no job with id {job['id']}"
            assert job["id"] not in [item["id"] for item in other.get("/jobs").json()["items"]]
        assert client.post(f"/jobs/{job['id']}/cancel").status_code == 200

    def test_a_foreign_cursor(self, client: httpx.Client) -> None:
        response = client.get("/jobs", params={"cursor": "bm90LWEtdXVpZA"})
        assert response.status_code == 400
        assert response.json()["message"] == "cursor is not one this API returned"


class TestCallbacks:
    def test_a_job_rows_status_callbacks_carry_its_job_id(self, names: dict[str, str], gateway: GatewayProcess) -> None:
        with gateway.client("acme-billing") as other:
            assert other.put("/callbacks", json={"url": "https://203.0.114.10/jobs", "events": ["delivery.cancelled"]}).status_code == 200
            try:
                job = post_job(other, f"recipient,first_name\n{names['recipient']},Ada\n", template=names["template"], send_at=TOMORROW).json()
                assert other.post(f"/jobs/{job['id']}/cancel").status_code == 200
                events = fetch(
                    gateway.database_url,
                    "SELECT e.data FROM callback_events AS e JOIN notifications AS n ON n.id = e.notification_id WHERE n.job_id = $1",
                    job["id"],
                )
            finally:
                assert other.delete("/callbacks").status_code == 204
        assert len(events) == 3  # a delivery.cancelled per channel
        assert {json.loads(event["data"])["job_id"] for event in events} == {job["id"]}
