"""Where the certificates live: one directory (``$MTLS_DIR``, default this folder), fixed file names.

Everything that reads or writes a certificate finds it here: the CA tooling (``mtls.pki``), the
gateway's TLS settings, notifyctl's profile, the local stack's printed curl and the tests. The
names are a contract with docker compose too, which mounts the directory at ``/run/mtls``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

DEFAULT_DIRECTORY = Path(__file__).parent
DIRECTORY_ENV_VAR = "MTLS_DIR"

CERT_SUFFIX = ".crt.pem"
KEY_SUFFIX = ".key.pem"
CRL_FILE_NAME = "crl.pem"
# The client certificate `init` creates with every role: the local stack's and notifyctl's default.
DEFAULT_CLIENT = "client"


def resolve_directory(directory: Path | str | None = None) -> Path:
    """The explicit directory, else $MTLS_DIR, else the mtls/ package folder."""
    if directory is None:
        directory = os.environ.get(DIRECTORY_ENV_VAR) or DEFAULT_DIRECTORY
    return Path(directory).expanduser().absolute()


class CertificatePair(NamedTuple):
    """A certificate and its private key."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class PkiPaths:
    """Where every file of the PKI lives."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_recipients_cert: Path
    client_recipients_key: Path
    client_notifications_cert: Path
    client_notifications_key: Path
    crl: Path

    @classmethod
    def in_directory(cls, directory: Path | str | None = None) -> PkiPaths:
        """The paths in ``directory``, else in $MTLS_DIR, else in the mtls/ folder (read at each call)."""
        directory = resolve_directory(directory)
        return cls(
            directory,
            *_pair(directory, "ca"),
            *_pair(directory, "server"),
            *_pair(directory, DEFAULT_CLIENT),
            *_pair(directory, "client-recipients"),
            *_pair(directory, "client-notifications"),
            crl=directory / CRL_FILE_NAME,
        )

    def certificate_pair(self, name: str = DEFAULT_CLIENT) -> CertificatePair:
        """The certificate and private key of the certificate called ``name`` (a client's, by default)."""
        return _pair(self.directory, name)

    def all_files(self) -> tuple[Path, ...]:
        return (
            self.ca_cert,
            self.ca_key,
            self.server_cert,
            self.server_key,
            self.client_cert,
            self.client_key,
            self.client_recipients_cert,
            self.client_recipients_key,
            self.client_notifications_cert,
            self.client_notifications_key,
            self.crl,
        )


def _pair(directory: Path, name: str) -> CertificatePair:
    return CertificatePair(directory / f"{name}{CERT_SUFFIX}", directory / f"{name}{KEY_SUFFIX}")
