"""Templates through the real gateway process over mutual TLS: versions, deletion, listing,
preview (and with it personalisation as every send renders it), and the role."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from harness.gateway import GatewayProcess

ORDER = {
    "sms": "Hi ((first name)), order ((order ref)) has shipped.",
    "email": {"subject": "Order ((order ref))", "body": "Dear ((First_Name)),\n((items))((gift??\nIt is a gift.))"},
    "slack": "*((order ref))* for ((first name))",
    "category": "orders",
}


def unique(name: str) -> str:
    return f"{name}-{secrets.token_hex(3)}"


def put(client: httpx.Client, name: str, body: dict[str, Any], status: int) -> dict[str, Any]:
    response = client.put(f"/templates/{name}", json=body)
    assert response.status_code == status, response.text
    return response.json()


class TestVersions:
    def test_first_changed_identical(self, client: httpx.Client) -> None:
        name = unique("order")
        first = put(client, name, ORDER, 201)
        assert (first["name"], first["version"], first["category"]) == (name, 1, "orders")
        assert first["placeholders"] == ["first name", "order ref", "items", "gift"]
        assert first["email"] == ORDER["email"] and first["created_at"]
        same = put(client, name, dict(reversed(list(ORDER.items()))), 200)  # the same content, another key order
        assert same == first
        changed = put(client, name, {**ORDER, "sms": "Order ((order ref)) shipped"}, 200)
        assert changed["version"] == 2
        assert client.get(f"/templates/{name}").json() == changed
        assert client.get(f"/templates/{name}/versions/1").json() == first
        assert client.get(f"/templates/{name}/versions/2").json() == changed
        missing = client.get(f"/templates/{name}/versions/3")
        assert missing.status_code == 404 and missing.json()["message"] == f"template {name} has no version 3"

    def test_only_the_category_changed_is_a_new_version(self, client: httpx.Client) -> None:
        name = unique("category")
        put(client, name, {"sms": "hi"}, 201)
        assert put(client, name, {"sms": "hi", "category": "marketing"}, 200)["version"] == 2

    def test_deleted_then_put_again(self, client: httpx.Client) -> None:
        name = unique("gone")
        put(client, name, {"sms": "one"}, 201)
        put(client, name, {"sms": "two"}, 200)
        assert client.delete(f"/templates/{name}").status_code == 204
        assert client.delete(f"/templates/{name}").status_code == 204  # also when there is none
        for path in (f"/templates/{name}", f"/templates/{name}/versions/1"):
            response = client.get(path)
            assert response.status_code == 404 and response.json()["message"] == f"template not found: {name}"
        assert client.post(f"/templates/{name}/preview", json={}).status_code == 404
        # The same content as before: still a new version (never a (name, version) reused).
        again = put(client, name, {"sms": "two"}, 201)
        assert again["version"] == 3

    def test_listing_by_name_a_page_at_a_time(self, client: httpx.Client) -> None:
        prefix = unique("list")
        names = [f"{prefix}-{n}" for n in range(5)]
        for name in names:
            put(client, name, {"slack": f"hello from {name}"}, 201)
        put(client, names[1], {"slack": "second version"}, 200)
        client.delete(f"/templates/{names[3]}")
        seen: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = client.get("/templates", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
            seen += page["items"]
            cursor = page.get("next_cursor")
            if cursor is None:
                break
        mine = [item for item in seen if item["name"].startswith(prefix)]
        assert [item["name"] for item in mine] == [names[0], names[1], names[2], names[4]]
        assert mine[1]["version"] == 2 and mine[1]["slack"] == "second version"
        assert client.get("/templates", params={"cursor": "!!"}).status_code == 400


class TestRefusedTemplates:
    @pytest.mark.parametrize(
        ("body", "field", "words"),
        [
            ({}, None, "at least one channel"),
            ({"category": "orders"}, None, "at least one channel"),
            ({"sms": "   "}, "sms", "blank"),
            ({"email": {"subject": "a\r\nBcc: x@example.com", "body": "b"}}, "email", "one line"),
            ({"email": {"body": "b"}}, "email", "subject"),
            ({"sms": "Hi (( ))"}, "sms", "placeholder without a name"),
            ({"sms": "x" * 1601}, "sms", "the sms text without its placeholders' values too long for sms: 1,601 bytes"),
            ({"sms": "hi", "category": "Marketing"}, "category", "lower-case"),
            ({"sms": "hi", "fax": "no"}, "fax", "Extra inputs"),
        ],
        ids=["empty", "category-only", "blank", "crlf-subject", "no-subject", "nameless", "fixed-text-too-long", "category", "extra"],
    )
    def test_bad_templates_are_400s_naming_the_field(self, client: httpx.Client, body: dict, field: str | None, words: str) -> None:
        response = client.put(f"/templates/{unique('bad')}", json=body)
        assert response.status_code == 400, response.text
        assert words in response.json()["message"]
        if field is not None:
            assert response.json()["field"].startswith(field)

    def test_invalid_names(self, client: httpx.Client) -> None:
        response = client.put("/templates/%20leading-space", json={"sms": "hi"})
        assert response.status_code == 400 and response.json()["field"] == "name"


@pytest.fixture(scope="module")
def order(gateway: GatewayProcess) -> str:
    """A template with every channel, a list and a conditional, for the previews."""
    name = unique("preview")
    with gateway.client() as client:
        put(client, name, ORDER, 201)
    return name


class TestPreview:
    def preview(self, client: httpx.Client, name: str, personalisation: dict[str, Any]) -> httpx.Response:
        return client.post(f"/templates/{name}/preview", json={"personalisation": personalisation})

    def test_every_channel_rendered(self, client: httpx.Client, order: str) -> None:
        response = self.preview(client, order, {"FIRST NAME": "Ada", "order_ref": "A-1", "items": ["tea", "cake"], "gift": "yes"})
        assert response.status_code == 200, response.text
        assert response.json() == {
            "sms": {"body": "Hi Ada, order A-1 has shipped.", "fragments": 1, "encoding": "GSM-7"},
            "email": {"subject": "Order A-1", "body": "Dear Ada,\ntea\ncake\nIt is a gift."},
            "slack": {"text": "*A-1* for Ada"},
        }

    def test_missing_personalisation_names_every_one_in_template_order(self, client: httpx.Client, order: str) -> None:
        response = self.preview(client, order, {"items": "x", "unused": "ignored"})
        assert response.status_code == 400
        assert response.json() == {"message": "Missing personalisation: first name, order ref, gift", "field": "personalisation"}

    def test_keys_match_ignoring_case_spaces_underscores_and_hyphens(self, client: httpx.Client, order: str) -> None:
        for key in ("first name", "First_Name", "first-name", "FIRSTNAME"):
            body = self.preview(client, order, {key: "Ada", "order ref": "1", "items": "x", "gift": False}).json()
            assert body["sms"]["body"] == "Hi Ada, order 1 has shipped."
            assert body["email"]["body"] == "Dear Ada,\nx"

    def test_slack_escaping_and_values_stay_literal(self, client: httpx.Client, order: str) -> None:
        body = self.preview(client, order, {"first name": "<@U1> & co", "order ref": "((gift??boom))", "items": "x", "gift": 0}).json()
        assert body["slack"]["text"] == "*((gift??boom))* for &lt;@U1&gt; &amp; co"
        assert body["sms"]["body"] == "Hi <@U1> & co, order ((gift??boom)) has shipped."

    def test_fragments_and_encoding(self, client: httpx.Client, order: str) -> None:
        base = len("Hi , order 1 has shipped.")
        ucs2 = self.preview(client, order, {"first name": "ж" * (71 - base), "order ref": "1", "items": "", "gift": 0}).json()["sms"]
        assert (ucs2["fragments"], ucs2["encoding"]) == (2, "UCS-2")
        gsm = self.preview(client, order, {"first name": "a" * (160 - base), "order ref": "1", "items": "", "gift": 0}).json()["sms"]
        assert (gsm["fragments"], gsm["encoding"]) == (1, "GSM-7")

    def test_the_limits_a_send_would_hit(self, client: httpx.Client, order: str) -> None:
        response = self.preview(client, order, {"first name": "x" * 1600, "order ref": "1", "items": "", "gift": 0})
        assert response.status_code == 400
        assert response.json()["message"].startswith("the rendered template too long for sms: 1,625 bytes as GSM-7")
        response = self.preview(client, order, {"first name": "Ada", "order ref": "1\r\n2", "items": "", "gift": 0})
        assert response.status_code == 400 and response.json()["message"] == "email subject must be one line, without CR or LF"

    def test_values_that_are_not_text_numbers_or_lists(self, client: httpx.Client, order: str) -> None:
        response = self.preview(client, order, {"first name": {"a": 1}, "order ref": "1", "items": "", "gift": 0})
        assert response.status_code == 400 and response.json()["field"].startswith("personalisation")


class TestRole:
    def test_the_templates_role_is_needed(self, gateway: GatewayProcess) -> None:
        name = unique("role")
        with gateway.client() as client:
            put(client, name, {"sms": "hi"}, 201)
        for certificate in ("client-recipients", "client-notifications"):
            with gateway.client(certificate) as other:
                for response in (
                    other.put(f"/templates/{name}", json={"sms": "changed"}),
                    other.get(f"/templates/{name}"),
                    other.get(f"/templates/{name}/versions/1"),
                    other.get("/templates"),
                    other.post(f"/templates/{name}/preview", json={}),
                    other.delete(f"/templates/{name}"),
                ):
                    assert response.status_code == 403, response.text
                    assert "lacks the role 'templates'" in response.json()["message"]
        with gateway.client() as client:
            assert client.get(f"/templates/{name}").json()["version"] == 1
