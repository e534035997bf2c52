"""Who is calling: the verified client certificate, and the roles it grants.

TLS has already verified the certificate (CA, validity, revocation) before any request arrives;
here we only read it. Roles are the certificate subject's OU values.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Annotated

from cryptography import x509
from cryptography.x509.oid import NameOID
from fastapi import Depends, Request
from starlette.types import Scope

from gateway.errors import ForbiddenError, UnauthenticatedError


class Role(StrEnum):
    RECIPIENTS = "recipients"  # may manage recipients
    NOTIFICATIONS = "notifications"  # may send notifications, read their own, set their callback
    AUDIT = "audit"  # may read every client's notifications
    TEMPLATES = "templates"  # may manage and preview templates


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    common_name: str
    roles: frozenset[str]
    serial: str  # lowercase hex
    fingerprint: str  # SHA-256 of the DER certificate, lowercase hex


@lru_cache(maxsize=4096)
def identity_from_der(der: bytes) -> ClientIdentity:
    certificate = x509.load_der_x509_certificate(der)
    subject = certificate.subject
    common_names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    roles = frozenset(str(attribute.value) for attribute in subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME))
    return ClientIdentity(
        common_name=str(common_names[0].value) if common_names else "",
        roles=roles,
        serial=format(certificate.serial_number, "x"),
        fingerprint=hashlib.sha256(der).hexdigest(),
    )


def identity_of(scope: Scope) -> ClientIdentity:
    """The calling client's identity, worked out once per TLS connection.

    The TLS extension dict lives as long as the connection (gateway/tls.py fills it once), and a
    keep-alive connection's certificate cannot change, so the identity is kept in it.
    """
    tls = scope.get("extensions", {}).get("tls") or {}
    identity = tls.get("client_identity")
    if identity is None:
        der = tls.get("client_cert_der")
        if not der:
            # Only reachable when the app is served without mutual TLS (misconfiguration).
            raise UnauthenticatedError("a client certificate is required")
        identity = tls["client_identity"] = identity_from_der(der)
    return identity


async def client_identity(request: Request) -> ClientIdentity:
    # async on purpose: a sync dependency runs in the thread pool, which halved throughput.
    return identity_of(request.scope)


def authorise(identity: ClientIdentity, role: Role, *others: Role) -> ClientIdentity:
    """The identity, when its certificate grants ``role`` (or one of ``others``); 403 otherwise."""
    wanted = (role, *others)
    # A role is a str: looked up as itself (Enum's .value costs a descriptor call, on every request).
    if identity.roles.isdisjoint(wanted):
        names = " or ".join(repr(candidate.value) for candidate in wanted)
        raise ForbiddenError(
            f"the client certificate {identity.common_name!r} lacks the role {names} "
            f"(it has: {', '.join(sorted(identity.roles)) or 'none'})"
        )
    return identity


def reads_everything(identity: ClientIdentity) -> bool:
    """Whether the client may read other clients' notifications (role ``audit``); every other
    client reads only its own (gateway/notifications/service.py)."""
    return Role.AUDIT.value in identity.roles


def require_role(role: Role, *others: Role):  # noqa: ANN201 - returns a FastAPI dependency
    # Reads the identity itself rather than depending on client_identity: one dependency fewer
    # to solve on every request.
    async def dependency(request: Request) -> ClientIdentity:
        return authorise(identity_of(request.scope), role, *others)

    return dependency


RecipientsClient = Annotated[ClientIdentity, Depends(require_role(Role.RECIPIENTS))]
NotificationsClient = Annotated[ClientIdentity, Depends(require_role(Role.NOTIFICATIONS))]
# Reading a notification: its own client (role notifications) or an auditor.
NotificationsReader = Annotated[ClientIdentity, Depends(require_role(Role.NOTIFICATIONS, Role.AUDIT))]
TemplatesClient = Annotated[ClientIdentity, Depends(require_role(Role.TEMPLATES))]
