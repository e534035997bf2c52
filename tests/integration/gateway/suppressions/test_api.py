"""GET /suppressions and DELETE /suppressions/{channel}/{address} on the real gateway (the rows are
written as receipts write them), and the accept's skip of a suppressed address."""

from __future__ import annotations

import secrets

import httpx
import pytest

from harness.gateway import GatewayProcess
from harness.postgres import fetch


@pytest.fixture
def suppressed(database_url: str) -> dict[str, str]:
    """Three suppressions of this test's own: two emails, one phone number."""
    tag = secrets.token_hex(4)
    rows = {
        f"a-{tag}@example.com": "email",
        f"b-{tag}@example.com": "email",
        f"+1415555{secrets.randbelow(10_000):04d}": "sms",
    }
    for address, channel in rows.items():
        fetch(
            database_url,
            "INSERT INTO suppressions (channel, address, reason) VALUES ($1, $2, 'complaint (abuse)') ON CONFLICT DO NOTHING",
            channel,
            address,
        )
    return rows


def listed(client: httpx.Client, **params: object) -> list[dict]:
    items, cursor = [], None
    while True:
        answer = client.get("/suppressions", params={**params, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        page = answer.json()
        items += page["items"]
        if not (cursor := page.get("next_cursor")):
            return items


class TestListing:
    def test_pages_of_one_channel_in_address_order(self, client: httpx.Client, suppressed: dict[str, str]) -> None:
        emails = listed(client, channel="email", limit=1)
        addresses = [item["address"] for item in emails]
        assert addresses == sorted(addresses)
        assert {a for a, channel in suppressed.items() if channel == "email"} <= set(addresses)
        assert {item["channel"] for item in emails} == {"email"}
        mine = next(item for item in emails if item["address"] in suppressed)
        assert mine["reason"] == "complaint (abuse)" and mine["created_at"]

    def test_every_channel_without_a_filter(self, client: httpx.Client, suppressed: dict[str, str]) -> None:
        assert set(suppressed) <= {item["address"] for item in listed(client, limit=2)}

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({"cursor": "bm90LW9uZS1vZi1vdXJz"}, "cursor is not one this API returned"),
            ({"channel": "fax"}, "channel"),
            ({"limit": 0}, "limit"),
        ],
    )
    def test_bad_parameters_are_400(self, client: httpx.Client, params: dict, message: str) -> None:
        answer = client.get("/suppressions", params=params)
        assert answer.status_code == 400
        assert message in answer.text

    def test_needs_the_recipients_role(self, gateway: GatewayProcess) -> None:
        with gateway.client("client-notifications") as http:
            answer = http.get("/suppressions")
        assert answer.status_code == 403
        assert "lacks the role 'recipients'" in answer.json()["message"]


class TestLifting:
    def test_delete_lifts_once_then_404(self, client: httpx.Client, suppressed: dict[str, str]) -> None:
        number = next(a for a, channel in suppressed.items() if channel == "sms")
        assert client.delete(f"/suppressions/sms/{number}").status_code == 204
        second = client.delete(f"/suppressions/sms/{number}")
        assert second.status_code == 404
        assert second.json()["message"] == f"sms address {number!r} is not suppressed"
        assert number not in {item["address"] for item in listed(client, channel="sms")}

    def test_an_address_postgres_cannot_store_is_400(self, client: httpx.Client) -> None:
        assert client.delete("/suppressions/email/a%00b@example.com").status_code == 400


class TestAccept:
    def test_a_suppressed_address_is_skipped_even_for_a_critical_category(self, client: httpx.Client, suppressed: dict[str, str]) -> None:
        address = next(a for a, channel in suppressed.items() if channel == "email")
        recipient = f"suppressed-{secrets.token_hex(4)}"
        assert client.put(f"/recipients/{recipient}", json={"email": address, "slack_id": "U0ADA12345"}).status_code == 204
        created = client.post("/notifications", json={"recipient": recipient, "message": "reset", "category": "security"})
        assert created.status_code == 201, created.text
        deliveries = client.get(f"/notifications/{created.json()['id']}").json()["deliveries"]
        assert deliveries["email"]["status"] == "skipped"
        assert deliveries["email"]["last_error"] == "address suppressed: complaint (abuse)"
        assert deliveries["slack"]["status"] in ("pending", "sending", "sent")
        assert deliveries["email"]["receipts"] == [] and deliveries["email"]["delivered_at"] is None
