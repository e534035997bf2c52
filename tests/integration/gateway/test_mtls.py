"""Mutual TLS at the gateway's door: who gets in, who does not, and what each role may do.

Refusals happen in the TLS handshake, so the app never sees those clients: both httpx and curl
must fail to connect at all.
"""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from harness.gateway import Certificates, GatewayProcess, start_gateway
from mtls import pki


def handshake_refused(gateway: GatewayProcess, context: ssl.SSLContext) -> bool:
    try:
        with httpx.Client(base_url=gateway.base_url, verify=context, timeout=10) as client:
            client.get("/recipients")
    except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
        return True
    return False


class TestRefusedAtTheHandshake:
    def test_no_client_certificate(self, gateway: GatewayProcess) -> None:
        assert handshake_refused(gateway, gateway.ssl_context(None))
        bare = ["curl", "-sS", "--cacert", str(gateway.certificates.ca), f"{gateway.base_url}/recipients"]
        result = subprocess.run(bare, capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode != 0
        assert result.stdout == ""

    def test_certificate_from_another_ca(self, gateway: GatewayProcess, certificates: Certificates) -> None:
        foreign = Certificates(certificates.directory / "foreign")
        assert handshake_refused(gateway, gateway.ssl_context("client", certificates=foreign))
        result = gateway.curl("--cert", str(foreign.client().cert), "--key", str(foreign.client().key), f"{gateway.base_url}/recipients")
        assert result.returncode != 0

    @pytest.mark.parametrize("name", ["expired", "not-yet-valid"])
    def test_certificate_outside_its_validity(self, gateway: GatewayProcess, name: str) -> None:
        assert handshake_refused(gateway, gateway.ssl_context(name))
        assert gateway.curl(f"{gateway.base_url}/recipients", name=name).returncode != 0

    @pytest.mark.parametrize(("version", "accepted"), [("-tls1", False), ("-tls1_1", False), ("-tls1_2", True), ("-tls1_3", True)])
    def test_protocol_versions(self, gateway: GatewayProcess, version: str, accepted: bool) -> None:
        client = gateway.certificates.client()
        # openssl s_client, at security level 0 so that the client itself is willing to try old
        # versions: what is refused here is refused by the gateway.
        argv = [
            "openssl", "s_client", "-connect", f"127.0.0.1:{gateway.port}", version, "-cipher", "DEFAULT@SECLEVEL=0",
            "-CAfile", str(gateway.certificates.ca), "-cert", str(client.cert), "-key", str(client.key), "-verify_return_error",
        ]
        result = subprocess.run(argv, input="", capture_output=True, text=True, timeout=30, check=False)
        negotiated = result.returncode == 0 and re.search(r"New, TLSv1\.[23], Cipher is [A-Z0-9_-]+", result.stdout) is not None
        assert negotiated is accepted, result.stdout[-800:] + result.stderr[-800:]

    def test_accepted_certificate_for_contrast(self, gateway: GatewayProcess) -> None:
        assert not handshake_refused(gateway, gateway.ssl_context("client"))


class TestRevocation:
    def test_revoked_certificate_is_refused_without_a_restart(
        self, tmp_path: Path, certificates: Certificates, database_url: str, moto, log_dir: Path
    ) -> None:
        # A CA of its own, so revoking here does not touch the session's certificates.
        own = Certificates(tmp_path / "certs")
        shutil.copytree(certificates.directory, own.directory, ignore=shutil.ignore_patterns("foreign"))
        pki.issue_client_certificate(own.directory, "soon-revoked", pki.ROLES)
        pki.issue_client_certificate(own.directory, "revoked-before-start", pki.ROLES)
        pki.revoke_certificate(own.directory, "revoked-before-start")
        gateway = start_gateway(
            certificates=own, database_url=database_url, aws_endpoint_url=moto.endpoint_url, log_dir=log_dir, name="gateway-crl"
        )
        try:
            assert handshake_refused(gateway, gateway.ssl_context("revoked-before-start"))
            assert not handshake_refused(gateway, gateway.ssl_context("soon-revoked"))

            pki.revoke_certificate(own.directory, "soon-revoked")
            deadline = time.monotonic() + 10
            while not handshake_refused(gateway, gateway.ssl_context("soon-revoked")):
                assert time.monotonic() < deadline, "the gateway did not pick up the new CRL"
                time.sleep(0.3)
            # Everyone else still gets in after the reload.
            assert not handshake_refused(gateway, gateway.ssl_context("client"))
            assert gateway.process.running
        finally:
            gateway.process.stop()


class TestRoles:
    def test_recipients_role_cannot_send(self, gateway: GatewayProcess) -> None:
        with gateway.client("client-recipients") as client:
            assert client.put("/recipients/role-test", json={"email": "r@example.com"}).status_code == 204
            response = client.post("/notifications", json={"recipient": "role-test", "message": "m"})
        assert response.status_code == 403
        assert "notifications" in response.json()["message"]

    def test_notifications_role_cannot_manage_recipients(self, gateway: GatewayProcess) -> None:
        with gateway.client("client-notifications") as client:
            for response in (
                client.put("/recipients/role-test", json={"email": "r@example.com"}),
                client.get("/recipients/role-test"),
                client.delete("/recipients/role-test"),
                client.get("/recipients"),
            ):
                assert response.status_code == 403
                assert "'recipients'" in response.json()["message"]
            assert client.post("/notifications", json={"recipient": "role-test", "message": "m"}).status_code in (201, 400)
