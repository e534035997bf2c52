"""mtls/pki.py: our CA, server and client certificates, revocation and the CRL, checked with
cryptography, openssl and real TLS handshakes."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import stat
import subprocess
import threading
from datetime import UTC, datetime, timedelta, timezone
from ipaddress import ip_address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mtls import (
    ROLE_OID,
    ROLES,
    FileExistsPkiError,
    InvalidRequestError,
    MissingCaError,
    PkiError,
    PkiPaths,
    create_ca,
    default_clients_lacking_roles,
    init_pki,
    issue_client_certificate,
    issue_server_certificate,
    list_certificates,
    load_crl,
    revoke_certificate,
    roles_of,
    write_crl,
)


@pytest.fixture
def paths(tmp_path: Path) -> PkiPaths:
    return init_pki(tmp_path / "pki")


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def extended_key_usages(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def now() -> datetime:
    return datetime.now(timezone.utc)


class TestInitPki:
    def test_writes_every_file_with_private_keys_0600(self, paths: PkiPaths) -> None:
        expected = {
            "ca.crt.pem", "ca.key.pem", "server.crt.pem", "server.key.pem", "client.crt.pem", "client.key.pem",
            "client-recipients.crt.pem", "client-recipients.key.pem",
            "client-notifications.crt.pem", "client-notifications.key.pem", "crl.pem",
        }  # fmt: skip
        assert {path.name for path in paths.directory.iterdir()} == expected
        assert {path.name for path in paths.all_files()} == expected
        for path in paths.all_files():
            if path.name.endswith(".key.pem"):
                assert file_mode(path) == 0o600, path
            else:
                assert file_mode(path) & 0o400 and not file_mode(path) & 0o022, path

    def test_default_clients_carry_their_roles(self, paths: PkiPaths) -> None:
        assert roles_of(load_cert(paths.client_cert)) == ROLES
        assert roles_of(load_cert(paths.client_recipients_cert)) == ("recipients",)
        assert roles_of(load_cert(paths.client_notifications_cert)) == ("notifications",)
        assert load_cert(paths.client_cert).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "client"

    def test_writes_an_empty_currently_valid_crl(self, paths: PkiPaths) -> None:
        crl = load_crl(paths.directory)
        assert crl is not None and len(crl) == 0
        assert crl.last_update_utc <= now() < crl.next_update_utc
        assert timedelta(days=30, minutes=-1) < crl.next_update_utc - now() <= timedelta(days=30)

    def test_second_run_keeps_existing_files_and_recreates_missing_ones(self, paths: PkiPaths) -> None:
        before = {path: path.read_bytes() for path in paths.all_files()}
        paths.client_recipients_cert.unlink()
        paths.client_recipients_key.unlink()
        init_pki(paths.directory)
        for path, content in before.items():
            if path in (paths.client_recipients_cert, paths.client_recipients_key):
                assert path.read_bytes() != content
            else:
                assert path.read_bytes() == content, path
        load_cert(paths.client_recipients_cert).verify_directly_issued_by(load_cert(paths.ca_cert))

    def test_a_default_client_lacking_a_role_is_issued_again_with_every_role(self, paths: PkiPaths) -> None:
        # As made before the templates and audit roles existed: the local stack's client.crt.pem
        # must not stay without them.
        issue_client_certificate(paths.directory, "client", ["recipients", "notifications"], force=True)
        old = paths.client_cert.read_bytes()
        others = {path: path.read_bytes() for path in paths.all_files() if path not in (paths.client_cert, paths.client_key)}
        assert default_clients_lacking_roles(paths.directory) == {"client": ("templates", "audit")}
        init_pki(paths.directory)
        assert paths.client_cert.read_bytes() != old
        assert roles_of(load_cert(paths.client_cert)) == ROLES
        load_cert(paths.client_cert).verify_directly_issued_by(load_cert(paths.ca_cert))
        assert {path: path.read_bytes() for path in others} == others
        assert default_clients_lacking_roles(paths.directory) == {}

    def test_refuses_certificates_without_their_ca(self, paths: PkiPaths) -> None:
        paths.ca_cert.unlink()
        paths.ca_key.unlink()
        with pytest.raises(MissingCaError, match="ca.crt.pem is missing"):
            init_pki(paths.directory)

    def test_refuses_half_a_pair(self, paths: PkiPaths) -> None:
        paths.client_key.unlink()
        with pytest.raises(PkiError, match="client.key.pem is missing"):
            init_pki(paths.directory)

    def test_force_regenerates_everything_and_starts_a_fresh_crl(self, paths: PkiPaths) -> None:
        before = {path: path.read_bytes() for path in paths.all_files()}
        revoke_certificate(paths.directory, "client")
        init_pki(paths.directory, force=True)
        for path, content in before.items():
            assert path.read_bytes() != content, path
        crl = load_crl(paths.directory)
        assert crl is not None and len(crl) == 0
        assert crl.is_signature_valid(load_cert(paths.ca_cert).public_key())

    def test_force_creates_keys_0600_even_over_a_readable_file(self, paths: PkiPaths) -> None:
        os.chmod(paths.client_key, 0o644)
        init_pki(paths.directory, force=True)
        assert file_mode(paths.client_key) == 0o600

    def test_directory_defaults_to_mtls_dir_env(self, tmp_path: Path) -> None:
        paths = init_pki()
        assert paths.directory == tmp_path / "default-dir"
        assert paths.ca_cert.exists()


class TestCreateCa:
    def test_ca_extensions_and_validity(self, tmp_path: Path) -> None:
        cert_path, key_path = create_ca(tmp_path, common_name="Test CA")
        cert = load_cert(cert_path)
        assert file_mode(key_path) == 0o600
        assert cert.subject == cert.issuer
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Test CA"
        cert.verify_directly_issued_by(cert)
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        lifetime = cert.not_valid_after_utc - now()
        assert timedelta(days=3640) < lifetime <= timedelta(days=3650)

    def test_refuses_to_overwrite_without_force(self, tmp_path: Path) -> None:
        cert_path, _ = create_ca(tmp_path)
        content = cert_path.read_bytes()
        with pytest.raises(FileExistsPkiError, match="ca.crt.pem already exists"):
            create_ca(tmp_path)
        assert cert_path.read_bytes() == content
        create_ca(tmp_path, force=True)
        assert cert_path.read_bytes() != content


class TestIssueServerCertificate:
    def test_server_certificate_contents(self, paths: PkiPaths) -> None:
        cert = load_cert(paths.server_cert)
        cert.verify_directly_issued_by(load_cert(paths.ca_cert))
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "gateway"
        assert extended_key_usages(cert) == [ExtendedKeyUsageOID.SERVER_AUTH]
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert set(sans.get_values_for_type(x509.DNSName)) == {"localhost", "gateway"}
        assert sans.get_values_for_type(x509.IPAddress) == [ip_address("127.0.0.1")]
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert timedelta(days=720) < cert.not_valid_after_utc - now() <= timedelta(days=730)

    def test_extra_sans_are_dns_names_or_ip_addresses(self, paths: PkiPaths) -> None:
        issue_server_certificate(paths.directory, extra_sans=["api.example.com", "10.1.2.3", "::1"], force=True)
        sans = load_cert(paths.server_cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert set(sans.get_values_for_type(x509.DNSName)) == {"localhost", "gateway", "api.example.com"}
        assert set(sans.get_values_for_type(x509.IPAddress)) == {
            ip_address("127.0.0.1"),
            ip_address("10.1.2.3"),
            ip_address("::1"),
        }

    def test_refuses_to_overwrite_without_force(self, paths: PkiPaths) -> None:
        with pytest.raises(FileExistsPkiError, match="server.crt.pem"):
            issue_server_certificate(paths.directory)

    def test_needs_a_ca(self, tmp_path: Path) -> None:
        with pytest.raises(MissingCaError, match="run `init` first"):
            issue_server_certificate(tmp_path)


class TestIssueClientCertificate:
    def test_client_certificate_contents(self, paths: PkiPaths) -> None:
        cert_path, key_path = issue_client_certificate(paths.directory, "billing", ["notifications"])
        assert (cert_path.name, key_path.name) == ("billing.crt.pem", "billing.key.pem")
        assert file_mode(key_path) == 0o600
        cert = load_cert(cert_path)
        ca_cert = load_cert(paths.ca_cert)
        cert.verify_directly_issued_by(ca_cert)
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "billing"
        assert [attribute.value for attribute in cert.subject.get_attributes_for_oid(ROLE_OID)] == ["notifications"]
        assert extended_key_usages(cert) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert constraints.critical and not constraints.value.ca
        ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        assert aki.key_identifier == ca_ski.digest
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        assert timedelta(days=364) < cert.not_valid_after_utc - now() <= timedelta(days=365)

    def test_one_ou_per_role_without_duplicates(self, paths: PkiPaths) -> None:
        cert_path, _ = issue_client_certificate(
            paths.directory, "both", ["notifications", "recipients", "notifications"]
        )
        assert roles_of(load_cert(cert_path)) == ("notifications", "recipients")

    def test_days_sets_the_validity(self, paths: PkiPaths) -> None:
        cert_path, _ = issue_client_certificate(paths.directory, "short", ["recipients"], days=7)
        lifetime = load_cert(cert_path).not_valid_after_utc - now()
        assert timedelta(days=6, hours=23) < lifetime <= timedelta(days=7)

    def test_explicit_validity_window(self, paths: PkiPaths) -> None:
        start = datetime(2020, 1, 1, tzinfo=timezone.utc)
        end = datetime(2020, 1, 2, tzinfo=timezone.utc)
        cert_path, _ = issue_client_certificate(
            paths.directory, "old", ["recipients"], not_valid_before=start, not_valid_after=end
        )
        cert = load_cert(cert_path)
        assert (cert.not_valid_before_utc, cert.not_valid_after_utc) == (start, end)

    def test_refuses_an_empty_validity_window(self, paths: PkiPaths) -> None:
        moment = now()
        with pytest.raises(InvalidRequestError, match="must be after"):
            issue_client_certificate(
                paths.directory, "x", ["recipients"], not_valid_before=moment, not_valid_after=moment
            )

    @pytest.mark.parametrize("roles", [["admin"], ["recipients", "Recipients"], []])
    def test_refuses_unknown_or_missing_roles(self, paths: PkiPaths, roles: list[str]) -> None:
        with pytest.raises(InvalidRequestError, match="known roles: recipients, notifications, templates"):
            issue_client_certificate(paths.directory, "someone", roles)
        assert not (paths.directory / "someone.crt.pem").exists()

    @pytest.mark.parametrize("name", ["", "-leading-dash", ".hidden", "a/b", "../up", "sp ace", "x" * 65, "ca", "CA", "server", "crl"])  # fmt: skip
    def test_refuses_invalid_and_reserved_names(self, paths: PkiPaths, name: str) -> None:
        with pytest.raises(InvalidRequestError):
            issue_client_certificate(paths.directory, name, ["recipients"])

    def test_refuses_to_overwrite_without_force(self, paths: PkiPaths) -> None:
        content = paths.client_cert.read_bytes()
        with pytest.raises(FileExistsPkiError, match="client.crt.pem already exists"):
            issue_client_certificate(paths.directory, "client", ["recipients"])
        assert paths.client_cert.read_bytes() == content
        issue_client_certificate(paths.directory, "client", ["recipients"], force=True)
        assert roles_of(load_cert(paths.client_cert)) == ("recipients",)


class TestRevokeCertificate:
    def test_revoke_by_name_adds_the_serial_to_a_ca_signed_crl(self, paths: PkiPaths) -> None:
        serial = revoke_certificate(paths.directory, "client")
        assert serial == load_cert(paths.client_cert).serial_number
        crl = load_crl(paths.directory)
        assert crl is not None
        assert crl.get_revoked_certificate_by_serial_number(serial) is not None
        assert crl.is_signature_valid(load_cert(paths.ca_cert).public_key())
        assert crl.last_update_utc <= now() < crl.next_update_utc

    @pytest.mark.parametrize("spelling", ["{serial:x}", "0x{serial:X}"])
    def test_revoke_by_hex_serial(self, paths: PkiPaths, spelling: str) -> None:
        serial = load_cert(paths.client_recipients_cert).serial_number
        assert revoke_certificate(paths.directory, spelling.format(serial=serial)) == serial
        crl = load_crl(paths.directory)
        assert crl is not None and crl.get_revoked_certificate_by_serial_number(serial) is not None

    def test_keeps_previous_entries_and_is_idempotent(self, paths: PkiPaths) -> None:
        first = revoke_certificate(paths.directory, "client")
        first_crl = load_crl(paths.directory)
        assert first_crl is not None
        first_date = first_crl.get_revoked_certificate_by_serial_number(first).revocation_date_utc
        second = revoke_certificate(paths.directory, "client-notifications")
        assert revoke_certificate(paths.directory, "client") == first
        write_crl(paths.directory)
        crl = load_crl(paths.directory)
        assert crl is not None
        assert sorted(entry.serial_number for entry in crl) == sorted([first, second])
        assert crl.get_revoked_certificate_by_serial_number(first).revocation_date_utc == first_date

    def test_refuses_what_is_neither_a_name_nor_a_serial(self, paths: PkiPaths) -> None:
        with pytest.raises(InvalidRequestError, match="neither a certificate name"):
            revoke_certificate(paths.directory, "nobody-here")

    @pytest.mark.parametrize("serial", ["0", "f" * 41])
    def test_refuses_impossible_serials(self, paths: PkiPaths, serial: str) -> None:
        with pytest.raises(InvalidRequestError, match="not a valid certificate serial"):
            revoke_certificate(paths.directory, serial)

    def test_refuses_a_certificate_from_another_ca(self, paths: PkiPaths, tmp_path: Path) -> None:
        foreign = init_pki(tmp_path / "foreign")
        shutil.copy(foreign.client_cert, paths.directory / "stranger.crt.pem")
        with pytest.raises(InvalidRequestError, match="not issued by the CA"):
            revoke_certificate(paths.directory, "stranger")


class TestWriteCrl:
    def test_last_update_strictly_increases_and_stays_valid(self, paths: PkiPaths) -> None:
        crls = []
        for _ in range(3):  # quicker than a second apart
            write_crl(paths.directory)
            crls.append(load_crl(paths.directory))
        last_updates = [crl.last_update_utc for crl in crls]
        assert last_updates == sorted(set(last_updates))
        assert last_updates[-1] <= now()
        crl_numbers = [crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number for crl in crls]
        assert crl_numbers == sorted(set(crl_numbers))

    def test_next_update_days(self, paths: PkiPaths) -> None:
        write_crl(paths.directory, next_update_days=2)
        crl = load_crl(paths.directory)
        assert crl is not None
        assert timedelta(days=2, minutes=-1) < crl.next_update_utc - now() <= timedelta(days=2)


class TestListCertificates:
    def test_lists_all_but_the_ca_and_marks_revoked(self, paths: PkiPaths) -> None:
        revoke_certificate(paths.directory, "client-recipients")
        infos = {info.name: info for info in list_certificates(paths.directory)}
        assert set(infos) == {"server", "client", "client-recipients", "client-notifications"}
        assert infos["client-recipients"].revoked
        assert not infos["client"].revoked
        client = load_cert(paths.client_cert)
        assert infos["client"].common_name == "client"
        assert infos["client"].roles == ROLES
        assert infos["client"].serial == format(client.serial_number, "x")
        assert infos["client"].sha256_fingerprint == client.fingerprint(hashes.SHA256()).hex()
        assert infos["client"].not_after == client.not_valid_after_utc


def openssl_verify(paths: PkiPaths, cert_path: Path) -> subprocess.CompletedProcess[str]:
    command = ["openssl", "verify", "-CAfile", str(paths.ca_cert), "-crl_check", "-CRLfile", str(paths.crl), str(cert_path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl binary")
class TestOpensslVerify:
    def test_client_verifies_until_revoked(self, paths: PkiPaths) -> None:
        before = openssl_verify(paths, paths.client_cert)
        assert before.returncode == 0, before.stdout + before.stderr
        revoke_certificate(paths.directory, "client")
        after = openssl_verify(paths, paths.client_cert)
        assert after.returncode != 0
        assert "revoked" in after.stdout + after.stderr


def server_context(paths: PkiPaths) -> ssl.SSLContext:
    """What the gateway does: require a client certificate, checked against the CA and the CRL."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(paths.server_cert, paths.server_key)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=paths.ca_cert)
    context.load_verify_locations(cafile=paths.crl)
    context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return context


def client_context(paths: PkiPaths, cert_path: Path, key_path: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=paths.ca_cert)
    context.load_cert_chain(cert_path, key_path)
    return context


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> dict[str, object]:
    """Run a TLS handshake over a loopback socket pair; returns the server's view of it.

    The result is read on the server side: with TLS 1.3 the client finishes its handshake before
    the server has checked the client certificate.
    """
    server_socket, client_socket = socket.socketpair()
    server_socket.settimeout(10)
    client_socket.settimeout(10)
    outcome: dict[str, object] = {}

    def serve() -> None:
        try:
            with server.wrap_socket(server_socket, server_side=True) as tls:
                outcome["peer"] = tls.getpeercert()
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as error:
            outcome["error"] = error

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client.wrap_socket(client_socket, server_hostname="localhost") as tls:
            tls.recv(2)
    except (ssl.SSLError, OSError):
        pass
    finally:
        thread.join(timeout=15)
        server_socket.close()
        client_socket.close()
    return outcome


class TestTlsHandshake:
    def test_accepts_a_valid_client_and_sees_its_roles(self, paths: PkiPaths) -> None:
        outcome = handshake(server_context(paths), client_context(paths, paths.client_cert, paths.client_key))
        assert "error" not in outcome, outcome
        subject = outcome["peer"]["subject"]  # type: ignore[index]
        assert (("organizationalUnitName", "recipients"),) in subject
        assert (("commonName", "client"),) in subject

    def test_refuses_a_revoked_client(self, paths: PkiPaths) -> None:
        revoke_certificate(paths.directory, "client-recipients")
        client = client_context(paths, paths.client_recipients_cert, paths.client_recipients_key)
        outcome = handshake(server_context(paths), client)
        assert "revoked" in str(outcome.get("error")), outcome

    def test_refuses_a_client_of_a_foreign_ca(self, paths: PkiPaths, tmp_path: Path) -> None:
        foreign = init_pki(tmp_path / "foreign")
        outcome = handshake(server_context(paths), client_context(paths, foreign.client_cert, foreign.client_key))
        assert "certificate verify failed" in str(outcome.get("error")), outcome

    @pytest.mark.parametrize(
        ("offset_before", "offset_after", "reason"),
        [(timedelta(days=-30), timedelta(days=-1), "expired"), (timedelta(days=1), timedelta(days=30), "not yet valid")],
    )
    def test_refuses_a_client_outside_its_validity(
        self, paths: PkiPaths, offset_before: timedelta, offset_after: timedelta, reason: str
    ) -> None:
        cert_path, key_path = issue_client_certificate(
            paths.directory,
            "out-of-time",
            ["recipients"],
            not_valid_before=now() + offset_before,
            not_valid_after=now() + offset_after,
        )
        outcome = handshake(server_context(paths), client_context(paths, cert_path, key_path))
        assert reason in str(outcome.get("error")), outcome


def test_client_certificate_validity_window_is_respected_by_issuer(tmp_path: Path) -> None:
    """Guards the test fixtures: an 'expired' certificate really is expired."""
    from cryptography import x509

    from mtls import pki

    pki.init_pki(tmp_path)
    now = datetime.now(UTC)
    cert_path, _ = pki.issue_client_certificate(tmp_path, "old", pki.ROLES, not_valid_before=now - timedelta(days=3), not_valid_after=now - timedelta(days=1))
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert cert.not_valid_after_utc < now
