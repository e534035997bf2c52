"""Certificate tooling for the gateway's mutual TLS: our CA, server and client certificates, CRL.

The library lives in ``mtls.pki``, the file names in ``mtls.paths``; ``python -m mtls`` (or
``mtls/generate.sh``) is its CLI.
"""

from mtls.paths import CertificatePair, PkiPaths, resolve_directory
from mtls.pki import (
    ROLE_OID,
    ROLES,
    CertificateInfo,
    FileExistsPkiError,
    InvalidRequestError,
    MissingCaError,
    PkiError,
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

__all__ = [
    "ROLES",
    "ROLE_OID",
    "CertificateInfo",
    "CertificatePair",
    "FileExistsPkiError",
    "InvalidRequestError",
    "MissingCaError",
    "PkiError",
    "PkiPaths",
    "create_ca",
    "default_clients_lacking_roles",
    "init_pki",
    "issue_client_certificate",
    "issue_server_certificate",
    "list_certificates",
    "load_crl",
    "resolve_directory",
    "revoke_certificate",
    "roles_of",
    "write_crl",
]
