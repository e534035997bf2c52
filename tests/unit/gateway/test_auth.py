"""gateway/auth.py: the client identity read from a certificate."""

from __future__ import annotations

from pathlib import Path

from gateway.auth import identity_from_der


class TestIdentity:
    def test_identity_from_a_real_certificate(self, tmp_path: Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        from mtls import pki

        pki.init_pki(tmp_path)
        cert = x509.load_pem_x509_certificate((tmp_path / "client-notifications.crt.pem").read_bytes())
        identity = identity_from_der(cert.public_bytes(Encoding.DER))
        assert identity.common_name == "client-notifications"
        assert identity.roles == frozenset({"notifications"})
        assert identity.serial == format(cert.serial_number, "x")
        assert len(identity.fingerprint) == 64
