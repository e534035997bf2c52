"""PUT/GET/DELETE /callbacks and POST /callbacks/rotate-secret on the real gateway, and the URLs
it refuses when they are set (SSRF): a gateway of this module's own, with the production rules
(no localhost exemption) and ``CALLBACKS_ALLOWED_NETWORKS=10.20.0.0/16``."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.gateway import TEST_GATEWAY_SETTINGS, Certificates, GatewayProcess, start_gateway
from harness.postgres import fetch
from stack.moto import MotoServer

RANGES = (
    "callbacks may not reach loopback, private, link-local, shared (CGNAT), multicast, reserved or cloud metadata "
    "addresses unless CALLBACKS_ALLOWED_NETWORKS lists them"
)
PUBLIC = "https://203.0.114.10/hooks"  # a literal public address: no DNS needed


@pytest.fixture(scope="module")
def strict_gateway(
    prepared: dict[str, str], certificates: Certificates, database_url: str, moto: MotoServer, log_dir: Path
) -> Iterator[GatewayProcess]:
    process = start_gateway(
        certificates=certificates,
        database_url=database_url,
        aws_endpoint_url=moto.endpoint_url,
        log_dir=log_dir,
        name="gateway-callbacks",
        settings={**TEST_GATEWAY_SETTINGS, "callbacks_allow_localhost": False},
        extra_env={"CALLBACKS_ALLOWED_NETWORKS": "10.20.0.0/16"},
    )
    yield process
    process.stop()


@pytest.fixture
def client(strict_gateway: GatewayProcess) -> Iterator:
    with strict_gateway.client("client") as http:
        http.delete("/callbacks")
        yield http
        http.delete("/callbacks")


class TestSettingACallback:
    def test_put_shows_the_secret_get_does_not(self, client, database_url: str) -> None:
        answer = client.put("/callbacks", json={"url": PUBLIC})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["url"] == PUBLIC
        assert body["events"] == ["delivery.sent", "delivery.delivered", "delivery.failed", "delivery.skipped", "delivery.cancelled"]
        assert body["secret"].startswith("whsec_") and len(base64.b64decode(body["secret"].removeprefix("whsec_"))) == 32
        shown = client.get("/callbacks")
        assert shown.status_code == 200
        assert shown.json() == {"url": PUBLIC, "events": body["events"], "pending": 0, "last_success_at": None, "last_failure": None}
        assert fetch(database_url, "SELECT client FROM callbacks WHERE url = $1", PUBLIC) == [{"client": "client"}]

    def test_a_second_put_changes_url_and_events_and_keeps_the_secret(self, client) -> None:
        first = client.put("/callbacks", json={"url": PUBLIC}).json()
        second = client.put("/callbacks", json={"url": PUBLIC + "/v2", "events": ["delivery.failed"]}).json()
        assert second == {"url": PUBLIC + "/v2", "events": ["delivery.failed"], "secret": first["secret"]}

    def test_rotate_replaces_the_secret(self, client) -> None:
        first = client.put("/callbacks", json={"url": PUBLIC}).json()
        rotated = client.post("/callbacks/rotate-secret")
        assert rotated.status_code == 200
        assert rotated.json()["secret"].startswith("whsec_") and rotated.json()["secret"] != first["secret"]
        assert client.put("/callbacks", json={"url": PUBLIC}).json()["secret"] == rotated.json()["secret"]

    def test_delete_then_get_and_rotate_are_404(self, client) -> None:
        client.put("/callbacks", json={"url": PUBLIC})
        assert client.delete("/callbacks").status_code == 204
        assert client.delete("/callbacks").status_code == 204  # also when there is none
        for answer in (client.get("/callbacks"), client.post("/callbacks/rotate-secret")):
            assert answer.status_code == 404
            assert answer.json() == {"message": "no callback is set for the client 'client'; set one with PUT /callbacks"}

    def test_callbacks_are_per_client(self, client, strict_gateway: GatewayProcess) -> None:
        client.put("/callbacks", json={"url": PUBLIC})
        with strict_gateway.client("acme-billing") as other:
            assert other.get("/callbacks").status_code == 404
            assert other.delete("/callbacks").status_code == 204
        assert client.get("/callbacks").status_code == 200

    def test_the_notifications_role_is_needed(self, strict_gateway: GatewayProcess) -> None:
        with strict_gateway.client("client-recipients") as http:
            answer = http.put("/callbacks", json={"url": PUBLIC})
        assert answer.status_code == 403
        assert "lacks the role 'notifications'" in answer.json()["message"]

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"url": PUBLIC, "events": ["delivery.opened"]}, "events"),
            ({"url": PUBLIC, "events": []}, "events"),
            ({"url": PUBLIC, "events": ["delivery.sent", "delivery.sent"]}, "events"),
            ({}, "missing url"),
            ({"url": "x" * 2049}, "url"),
        ],
        ids=["unknown-event", "no-events", "repeated-event", "no-url", "too-long"],
    )
    def test_bad_bodies(self, client, body: dict, message: str) -> None:
        answer = client.put("/callbacks", json=body)
        assert answer.status_code == 400, answer.text
        assert message in answer.json()["message"]


class TestRefusedUrls:
    """Each URL rule and each range of addresses callbacks may not reach, refused when set."""

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("http://203.0.114.10/hooks", "url must be an https:// URL (http:// is allowed only for localhost and 127.0.0.1, when CALLBACKS_ALLOW_LOCALHOST is true)"),
            ("http://localhost:8080/hooks", "url must be an https:// URL (http:// is allowed only for localhost and 127.0.0.1, when CALLBACKS_ALLOW_LOCALHOST is true)"),
            ("ftp://203.0.114.10/", "url must be an https:// URL"),
            ("https://user:pw@203.0.114.10/", "url must not contain credentials: the signature authenticates our callbacks"),
            ("https://203.0.114.10/#part", "url must not have a fragment"),
            ("https://127.0.0.1/hooks", f"url's host 127.0.0.1 is a loopback address: {RANGES}"),
            ("https://localhost/hooks", f"url's host localhost resolves to 127.0.0.1, a loopback address: {RANGES}"),
            ("https://10.0.0.7/hooks", f"url's host 10.0.0.7 is a private address: {RANGES}"),
            ("https://192.168.1.1/", f"url's host 192.168.1.1 is a private address: {RANGES}"),
            ("https://172.16.5.4/", f"url's host 172.16.5.4 is a private address: {RANGES}"),
            ("https://[fd12:3456::1]/", f"url's host fd12:3456::1 is a private address: {RANGES}"),
            ("https://169.254.169.254/latest/meta-data/", f"url's host 169.254.169.254 is a cloud metadata address: {RANGES}"),
            ("https://[fd00:ec2::254]/", f"url's host fd00:ec2::254 is a cloud metadata address: {RANGES}"),
            ("https://169.254.10.10/", f"url's host 169.254.10.10 is a link-local address: {RANGES}"),
            ("https://[fe80::1]/", f"url's host fe80::1 is a link-local address: {RANGES}"),
            ("https://100.64.0.1/", f"url's host 100.64.0.1 is a shared (carrier-grade NAT) address: {RANGES}"),
            ("https://224.0.0.251/", f"url's host 224.0.0.251 is a multicast address: {RANGES}"),
            ("https://240.0.0.1/", f"url's host 240.0.0.1 is a reserved address (not globally reachable): {RANGES}"),
            ("https://0.0.0.0/", f"url's host 0.0.0.0 is the unspecified address: {RANGES}"),
            ("https://[::ffff:10.0.0.7]/", f"url's host ::ffff:10.0.0.7 is an IPv6 form of 10.0.0.7, a private address: {RANGES}"),
            ("https://[::1]/", f"url's host ::1 is a loopback address: {RANGES}"),
            ("https://no-such-host.invalid/hooks", "url's host no-such-host.invalid could not be resolved"),
        ],
    )
    def test_refused_with_the_reason(self, client, url: str, message: str) -> None:
        answer = client.put("/callbacks", json={"url": url})
        assert answer.status_code == 400, answer.text
        assert answer.json() == {"message": message, "field": "url"}
        assert client.get("/callbacks").status_code == 404  # nothing was stored

    def test_a_network_on_the_allow_list_is_accepted(self, client) -> None:
        answer = client.put("/callbacks", json={"url": "https://10.20.3.4:8443/hooks"})
        assert answer.status_code == 200, answer.text
        # The rest of 10/8 is still refused.
        assert client.put("/callbacks", json={"url": "https://10.21.0.1/"}).status_code == 400

    def test_the_local_stacks_exemption(self, gateway: GatewayProcess) -> None:
        # The session's gateway runs as the local stack does: CALLBACKS_ALLOW_LOCALHOST=true.
        with gateway.client("client") as http:
            try:
                for url in ("http://localhost:9999/hooks", "http://127.0.0.1:9999/hooks", "https://localhost:9999/hooks"):
                    answer = http.put("/callbacks", json={"url": url})
                    assert answer.status_code == 200, (url, answer.text)
                # Only those two hosts: other loopback addresses are still refused.
                assert http.put("/callbacks", json={"url": "http://127.0.0.2/hooks"}).status_code == 400
            finally:
                http.delete("/callbacks")
