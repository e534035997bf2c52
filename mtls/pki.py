"""Our private CA: the CA itself, the gateway's server certificate, client certificates and the CRL.

Client systems call the gateway over mutual TLS. A client's roles travel in its certificate, one
``OU`` attribute per role, so the gateway authorises a request from the verified certificate alone.
Every file lives in one directory under a fixed name (``mtls.paths``): the gateway, the tests
and docker compose find the files by those names.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import re
import secrets
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mtls.paths import CERT_SUFFIX, PkiPaths

ROLES: tuple[str, ...] = ("recipients", "notifications", "templates", "audit")
ROLE_OID = NameOID.ORGANIZATIONAL_UNIT_NAME

CA_VALIDITY = timedelta(days=3650)
SERVER_VALIDITY = timedelta(days=730)
DEFAULT_CLIENT_DAYS = 365
DEFAULT_CRL_DAYS = 30
SERVER_COMMON_NAME = "gateway"
SERVER_DEFAULT_SANS: tuple[str, ...] = ("localhost", "127.0.0.1", "gateway")
ORGANIZATION = "Notifications"

# Certificates start a few minutes in the past so that a host whose clock runs slightly behind
# ours does not reject a certificate we have just issued as "not yet valid".
CLOCK_SKEW_ALLOWANCE = timedelta(minutes=5)

CLIENT_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# These names own files of their own; compared case-insensitively because "CA.crt.pem" and
# "ca.crt.pem" are the same file on case-insensitive file systems (macOS).
RESERVED_NAMES = frozenset({"ca", "server", "crl"})

# The certificates `init` creates besides the CA and the server: name -> roles.
DEFAULT_CLIENTS: dict[str, tuple[str, ...]] = {
    "client": ROLES,
    "client-recipients": ("recipients",),
    "client-notifications": ("notifications",),
}

PRIVATE_KEY_MODE = 0o600
PUBLIC_FILE_MODE = 0o644


class PkiError(Exception):
    """A user-facing problem with the PKI directory or a request; the message says what to do."""


class FileExistsPkiError(PkiError):
    """Refused to overwrite an existing file without force."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} already exists; refusing to overwrite it without --force")
        self.path = path


class MissingCaError(PkiError):
    """The directory holds no CA (or only half of one)."""


class InvalidRequestError(PkiError):
    """An invalid name, role, validity period or serial."""


@dataclass(frozen=True)
class CertificateInfo:
    name: str
    common_name: str
    roles: tuple[str, ...]
    serial: str
    not_before: datetime
    not_after: datetime
    revoked: bool
    sha256_fingerprint: str


def roles_of(cert: x509.Certificate) -> tuple[str, ...]:
    """The roles a certificate grants: the values of its subject's OU attributes, in order."""
    return tuple(str(attribute.value) for attribute in cert.subject.get_attributes_for_oid(ROLE_OID))


# --- issuing ---------------------------------------------------------------------------------


def init_pki(
    directory: Path | None = None,
    *,
    force: bool = False,
    extra_sans: Sequence[str] = (),
) -> PkiPaths:
    """Create whatever is missing: CA, server, the three default clients and an empty CRL.

    Without force existing files are kept, so running it twice is harmless, except a default
    client certificate that lacks one of its roles (issued before that role existed): it is
    issued again with every role (``default_clients_lacking_roles`` tells which beforehand; the
    old certificate stays valid until it expires). With force everything is regenerated (which
    invalidates every certificate issued before).
    """
    paths = PkiPaths.in_directory(directory)
    paths.directory.mkdir(parents=True, exist_ok=True)

    if force or _pair_missing(paths.ca_cert, paths.ca_key):
        issued_files = sorted(path for path in paths.directory.glob("*.pem") if path not in (paths.ca_cert, paths.ca_key))
        if issued_files and not force:
            raise MissingCaError(
                f"{paths.ca_cert} is missing but {issued_files[0]} exists: certificates without their CA "
                "cannot be verified; use --force to regenerate everything"
            )
        create_ca(paths.directory, force=force)

    if force or _pair_missing(paths.server_cert, paths.server_key):
        issue_server_certificate(paths.directory, extra_sans=extra_sans, force=force)
    lacking = {} if force else default_clients_lacking_roles(paths.directory)
    for name, roles in DEFAULT_CLIENTS.items():
        if force or name in lacking or _pair_missing(*paths.certificate_pair(name)):
            issue_client_certificate(paths.directory, name, roles, force=force or name in lacking)

    # The old CRL is signed by the old CA key, so after a forced regeneration it is worthless.
    if force:
        paths.crl.unlink(missing_ok=True)
    if not paths.crl.exists():
        write_crl(paths.directory)
    return paths


def default_clients_lacking_roles(directory: Path | None) -> dict[str, tuple[str, ...]]:
    """The default client certificates present without every role they are meant to have (name ->
    the roles missing): ``init_pki`` issues them again."""
    paths = PkiPaths.in_directory(directory)
    lacking = {}
    for name, roles in DEFAULT_CLIENTS.items():
        cert_path, key_path = paths.certificate_pair(name)
        if _pair_missing(cert_path, key_path):
            continue
        missing = tuple(role for role in roles if role not in roles_of(_load_certificate(cert_path)))
        if missing:
            lacking[name] = missing
    return lacking


def create_ca(
    directory: Path | None,
    *,
    common_name: str = "Notifications CA",
    force: bool = False,
) -> tuple[Path, Path]:
    """Create a self-signed CA that may sign end-entity certificates only (path length 0)."""
    paths = PkiPaths.in_directory(directory)
    _refuse_to_overwrite(paths.ca_cert, paths.ca_key, force=force)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = _utcnow()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW_ALLOWANCE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    paths.directory.mkdir(parents=True, exist_ok=True)
    _write_pair(paths.ca_cert, paths.ca_key, cert, key)
    return paths.ca_cert, paths.ca_key


def issue_server_certificate(
    directory: Path | None,
    *,
    extra_sans: Sequence[str] = (),
    force: bool = False,
) -> tuple[Path, Path]:
    """Issue the gateway's certificate: CN=gateway, serverAuth only, SANs for local and compose use."""
    paths = PkiPaths.in_directory(directory)
    _refuse_to_overwrite(paths.server_cert, paths.server_key, force=force)
    ca_cert, ca_key = _load_ca(paths)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _utcnow()
    sans = _subject_alternative_names([*SERVER_DEFAULT_SANS, *extra_sans])
    cert = (
        _end_entity_builder(
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_COMMON_NAME)]),
            key=key,
            ca_cert=ca_cert,
            not_valid_before=now - CLOCK_SKEW_ALLOWANCE,
            not_valid_after=now + SERVER_VALIDITY,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_pair(paths.server_cert, paths.server_key, cert, key)
    return paths.server_cert, paths.server_key


def issue_client_certificate(
    directory: Path | None,
    name: str,
    roles: Iterable[str],
    *,
    days: int = DEFAULT_CLIENT_DAYS,
    not_valid_before: datetime | None = None,
    not_valid_after: datetime | None = None,
    force: bool = False,
) -> tuple[Path, Path]:
    """Issue a client certificate (clientAuth only) for ``name`` carrying one OU per role.

    The validity is ``days`` from now unless explicit datetimes are given (tests use them to make
    expired and not-yet-valid certificates).
    """
    validate_name(name)
    roles = validate_roles(roles)
    if days < 1:
        raise InvalidRequestError(f"days must be at least 1, got {days}")
    paths = PkiPaths.in_directory(directory)
    cert_path, key_path = paths.certificate_pair(name)
    _refuse_to_overwrite(cert_path, key_path, force=force)
    ca_cert, ca_key = _load_ca(paths)

    now = _utcnow()
    start = _as_utc(not_valid_before) if not_valid_before is not None else now - CLOCK_SKEW_ALLOWANCE
    end = _as_utc(not_valid_after) if not_valid_after is not None else max(start, now) + timedelta(days=days)
    if end <= start:
        raise InvalidRequestError(f"not_valid_after ({end.isoformat()}) must be after not_valid_before ({start.isoformat()})")

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            *(x509.NameAttribute(ROLE_OID, role) for role in roles),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    cert = (
        _end_entity_builder(subject=subject, key=key, ca_cert=ca_cert, not_valid_before=start, not_valid_after=end)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_pair(cert_path, key_path, cert, key)
    return cert_path, key_path


def validate_name(name: str) -> None:
    if not CLIENT_NAME_PATTERN.fullmatch(name):
        raise InvalidRequestError(
            f"invalid certificate name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if name.lower() in RESERVED_NAMES:
        raise InvalidRequestError(f"{name!r} is reserved for the PKI's own files; choose another name")


def validate_roles(roles: Iterable[str]) -> tuple[str, ...]:
    """The roles without duplicates, in the given order; refuses unknown roles and an empty list."""
    unique = tuple(dict.fromkeys(roles))
    unknown = [role for role in unique if role not in ROLES]
    if unknown:
        raise InvalidRequestError(f"unknown role(s) {', '.join(unknown)}; known roles: {', '.join(ROLES)}")
    if not unique:
        raise InvalidRequestError(f"a client certificate needs at least one role; known roles: {', '.join(ROLES)}")
    return unique


# --- revocation ------------------------------------------------------------------------------


def revoke_certificate(directory: Path | None, name_or_serial: str) -> int:
    """Add a certificate to the CRL, by name (``NAME.crt.pem``) or hex serial; returns the serial.

    Revoking an already revoked certificate keeps its original revocation date and only re-signs.
    """
    paths = PkiPaths.in_directory(directory)
    with _crl_lock(paths):
        ca_cert, ca_key = _load_ca(paths)
        serial = _serial_to_revoke(paths, ca_cert, name_or_serial)
        previous = load_crl(paths.directory)
        entries = _revocations_of(previous, ca_cert)
        entries.setdefault(serial, _utcnow().replace(microsecond=0))
        _sign_crl(paths, ca_cert, ca_key, entries, previous=previous, next_update_days=DEFAULT_CRL_DAYS)
    return serial


def write_crl(directory: Path | None, *, next_update_days: int = DEFAULT_CRL_DAYS) -> Path:
    """Re-sign the CRL with fresh dates, keeping its entries (or write an empty one)."""
    if next_update_days < 1:
        raise InvalidRequestError(f"next_update_days must be at least 1, got {next_update_days}")
    paths = PkiPaths.in_directory(directory)
    with _crl_lock(paths):
        ca_cert, ca_key = _load_ca(paths)
        previous = load_crl(paths.directory)
        entries = _revocations_of(previous, ca_cert)
        _sign_crl(paths, ca_cert, ca_key, entries, previous=previous, next_update_days=next_update_days)
    return paths.crl


def load_crl(directory: Path | None) -> x509.CertificateRevocationList | None:
    """The CRL in the directory, or None when there is none yet."""
    paths = PkiPaths.in_directory(directory)
    if not paths.crl.exists():
        return None
    try:
        return x509.load_pem_x509_crl(paths.crl.read_bytes())
    except ValueError as error:
        raise PkiError(f"cannot read {paths.crl}: {error}") from error


def _serial_to_revoke(paths: PkiPaths, ca_cert: x509.Certificate, name_or_serial: str) -> int:
    """A certificate file's serial if ``NAME.crt.pem`` exists, else the argument read as hex."""
    is_name = CLIENT_NAME_PATTERN.fullmatch(name_or_serial) and name_or_serial.lower() not in RESERVED_NAMES
    cert_path = paths.certificate_pair(name_or_serial)[0] if is_name else None
    if cert_path is not None and cert_path.exists():
        cert = _load_certificate(cert_path)
        try:
            cert.verify_directly_issued_by(ca_cert)
        except (ValueError, TypeError, InvalidSignature):
            raise InvalidRequestError(f"{cert_path} was not issued by the CA in {paths.directory}") from None
        return cert.serial_number
    try:
        serial = int(name_or_serial.lower().removeprefix("0x").replace(":", ""), 16)
    except ValueError:
        raise InvalidRequestError(
            f"{name_or_serial!r} is neither a certificate name in {paths.directory} nor a hex serial number"
        ) from None
    # RFC 5280: positive and at most 20 octets, which cryptography enforces as < 2**159.
    if not 0 < serial < 2**159:
        raise InvalidRequestError(f"{name_or_serial!r} is not a valid certificate serial number")
    return serial


def _revocations_of(crl: x509.CertificateRevocationList | None, ca_cert: x509.Certificate) -> dict[int, datetime]:
    """serial -> revocation date, read from the existing CRL (the CRL is the only record)."""
    # A CRL signed by another key belongs to a CA that has since been replaced: its serials say
    # nothing about certificates of the current CA, so it is not carried over.
    if crl is None or not crl.is_signature_valid(ca_cert.public_key()):
        return {}
    return {entry.serial_number: entry.revocation_date_utc for entry in crl}


def _sign_crl(
    paths: PkiPaths,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    entries: dict[int, datetime],
    *,
    previous: x509.CertificateRevocationList | None,
    next_update_days: int,
) -> None:
    now = _utcnow()
    last_update = _next_last_update(previous.last_update_utc if previous is not None else None, now)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(last_update)
        .next_update(now + timedelta(days=next_update_days))
        .add_extension(x509.CRLNumber(_next_crl_number(previous)), critical=False)
        .add_extension(_authority_key_identifier(ca_cert), critical=False)
    )
    for serial, revoked_at in sorted(entries.items()):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(revoked_at).build()
        )
    crl = builder.sign(ca_key, hashes.SHA256())
    _write_atomically(paths.crl, crl.public_bytes(serialization.Encoding.PEM), mode=PUBLIC_FILE_MODE)


# If bumping would date the CRL at most this far ahead of our clock, wait for the clock instead.
_MAX_WAIT_FOR_NEXT_SECOND = timedelta(seconds=3)


def _next_last_update(previous: datetime | None, now: datetime) -> datetime:
    """A lastUpdate strictly after the previous CRL's, and never in the future.

    OpenSSL prefers the CRL with the newest lastUpdate when several are loaded, so two writes in
    the same second must still differ. It also rejects a CRL whose lastUpdate is in the future, and
    with VERIFY_CRL_CHECK_LEAF that rejects every client. Dating the CRL a few minutes back (as we
    do certificates, for clock skew) leaves room to bump by a second per write without reaching the
    future; only a burst of writes exhausting that room makes us wait. A previous CRL far ahead of
    our clock means the clock went backwards: that CRL is itself not yet valid and OpenSSL ranks a
    currently valid one above it, so we simply start from the backdated time again.
    """
    now = now.replace(microsecond=0)
    backdated = now - CLOCK_SKEW_ALLOWANCE
    if previous is None or previous < backdated:
        return backdated
    bumped = previous + timedelta(seconds=1)
    if bumped - now > _MAX_WAIT_FOR_NEXT_SECOND:
        return backdated
    if bumped > now:
        time.sleep((bumped - now).total_seconds())
    return bumped


def _next_crl_number(previous: x509.CertificateRevocationList | None) -> int:
    if previous is None:
        return 1
    try:
        return previous.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
    except x509.ExtensionNotFound:
        return 1


@contextlib.contextmanager
def _crl_lock(paths: PkiPaths) -> Iterator[None]:
    """Serialise read-modify-write of the CRL, so two concurrent revocations cannot lose one.

    The lock is on the directory itself, which leaves no lock file behind.
    """
    if not paths.directory.is_dir():
        raise MissingCaError(f"{paths.directory} does not exist; run `init` first")
    descriptor = os.open(paths.directory, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


# --- listing ---------------------------------------------------------------------------------


def list_certificates(directory: Path | None) -> list[CertificateInfo]:
    """Every certificate in the directory except the CA's, sorted by name."""
    paths = PkiPaths.in_directory(directory)
    crl = load_crl(paths.directory)
    revoked_serials = {entry.serial_number for entry in crl} if crl is not None else set()
    infos = []
    for cert_path in paths.directory.glob(f"*{CERT_SUFFIX}"):
        if cert_path == paths.ca_cert:
            continue
        cert = _load_certificate(cert_path)
        common_names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        infos.append(
            CertificateInfo(
                name=cert_path.name.removesuffix(CERT_SUFFIX),
                common_name=str(common_names[0].value) if common_names else "",
                roles=roles_of(cert),
                serial=format(cert.serial_number, "x"),
                not_before=cert.not_valid_before_utc,
                not_after=cert.not_valid_after_utc,
                revoked=cert.serial_number in revoked_serials,
                sha256_fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
            )
        )
    return sorted(infos, key=lambda info: info.name)


# --- building blocks -------------------------------------------------------------------------


def _end_entity_builder(
    *,
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    not_valid_before: datetime,
    not_valid_after: datetime,
) -> x509.CertificateBuilder:
    """What server and client certificates share; each adds its own EKU (and SANs)."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_valid_before)
        .not_valid_after(not_valid_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_authority_key_identifier(ca_cert), critical=False)
    )


def _key_usage(*, digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _authority_key_identifier(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _subject_alternative_names(values: Iterable[str]) -> list[x509.GeneralName]:
    """DNS names and IP addresses, told apart by whether the value parses as an IP address."""
    names: list[x509.GeneralName] = []
    for value in dict.fromkeys(value.strip() for value in values):
        if not value:
            continue
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(value)))
        except ValueError:
            names.append(x509.DNSName(value))
    return names


def _load_ca(paths: PkiPaths) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    if _pair_missing(paths.ca_cert, paths.ca_key):
        raise MissingCaError(f"no CA in {paths.directory} ({paths.ca_cert.name} + {paths.ca_key.name}); run `init` first")
    cert = _load_certificate(paths.ca_cert)
    try:
        key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    except (ValueError, TypeError) as error:
        raise PkiError(f"cannot read {paths.ca_key}: {error}") from error
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise PkiError(f"{paths.ca_key} is not the EC private key of {paths.ca_cert}")
    return cert, key


def _load_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError as error:
        raise PkiError(f"cannot read {path}: {error}") from error


def _pair_missing(cert_path: Path, key_path: Path) -> bool:
    """True when neither file exists; half a pair is an error, since issuing would overwrite it."""
    if cert_path.exists() and key_path.exists():
        return False
    if not cert_path.exists() and not key_path.exists():
        return True
    present, missing = (cert_path, key_path) if cert_path.exists() else (key_path, cert_path)
    raise PkiError(f"{missing} is missing but {present} exists; use --force to issue a new pair")


def _refuse_to_overwrite(*paths: Path, force: bool) -> None:
    if force:
        return
    for path in paths:
        if path.exists():
            raise FileExistsPkiError(path)


def _write_pair(cert_path: Path, key_path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    key_pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    _write_atomically(key_path, key_pem, mode=PRIVATE_KEY_MODE)
    _write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=PUBLIC_FILE_MODE)


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    """Write to a fresh file created with ``mode``, then rename it over ``path``.

    Creating the file with its final mode means a private key is never readable by others, not
    even for a moment, and a reader (the gateway reloading its CRL) never sees half a file.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _as_utc(moment: datetime) -> datetime:
    """Aware datetimes as they are; naive ones are taken as UTC, as cryptography does."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment
