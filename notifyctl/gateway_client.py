"""The gateway's API over mutual TLS through the client library (``notifications_client``),
with every failure turned into a NotifyctlError.

The certificate profile (gateway URL, CA, client certificate and key) comes from flags or from
``NOTIFYCTL_GATEWAY_URL``, ``NOTIFYCTL_CA``, ``NOTIFYCTL_CERT`` and ``NOTIFYCTL_KEY``; the
defaults are the local stack's (``https://localhost:8443`` and the files in ``mtls/``).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from cryptography import x509
from pydantic import BaseModel

from notifications_client import NO_RETRIES, ApiError, Client, Forbidden, RateLimited, ServerError, ServiceUnavailable, TransportError, Unauthenticated

from mtls.paths import PkiPaths
from notifyctl.errors import FailedError, NotifyctlError, RefusedError, UnavailableError

DEFAULT_GATEWAY_URL = "https://localhost:8443"
TIMEOUT_SECONDS = 15.0

GatewayUrlOption = Annotated[
    str, typer.Option("--gateway-url", envvar="NOTIFYCTL_GATEWAY_URL", help="The gateway's base URL.", show_default=True)
]
CaOption = Annotated[
    Path | None,
    typer.Option("--ca", envvar="NOTIFYCTL_CA", help="CA certificate the gateway's certificate chains to [default: mtls/ca.crt.pem]."),
]
CertOption = Annotated[
    Path | None,
    typer.Option("--cert", envvar="NOTIFYCTL_CERT", help="Client certificate [default: mtls/client.crt.pem]."),
]
KeyOption = Annotated[
    Path | None,
    typer.Option("--key", envvar="NOTIFYCTL_KEY", help="The client certificate's private key [default: mtls/client.key.pem]."),
]


@dataclass(frozen=True)
class Profile:
    gateway_url: str
    ca: Path
    cert: Path
    key: Path

    @classmethod
    def from_options(cls, gateway_url: str, ca: Path | None, cert: Path | None, key: Path | None) -> Profile:
        files = PkiPaths.in_directory()
        return cls(
            gateway_url=gateway_url.rstrip("/"),
            ca=ca or files.ca_cert,
            cert=cert or files.client_cert,
            key=key or files.client_key,
        )


# The options that make a Profile, in the order every command lists them.
_PROFILE_PARAMETERS = [
    inspect.Parameter("gateway_url", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=DEFAULT_GATEWAY_URL, annotation=GatewayUrlOption),
    inspect.Parameter("ca", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=CaOption),
    inspect.Parameter("cert", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=CertOption),
    inspect.Parameter("key", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=KeyOption),
]


def with_profile(command: Callable[..., Any]) -> Callable[..., Any]:
    """A command that takes ``profile: Profile``, offered with --gateway-url, --ca, --cert and --key
    (or their NOTIFYCTL_* variables) in that parameter's place."""
    signature = inspect.signature(command, eval_str=True)
    parameters: list[inspect.Parameter] = []
    for parameter in signature.parameters.values():
        parameters += _PROFILE_PARAMETERS if parameter.name == "profile" else [parameter]

    @functools.wraps(command)
    def wrapper(*args: Any, gateway_url: str, ca: Path | None, cert: Path | None, key: Path | None, **kwargs: Any) -> Any:
        return command(*args, profile=Profile.from_options(gateway_url, ca, cert, key), **kwargs)

    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
    return wrapper


@contextlib.contextmanager
def gateway(profile: Profile) -> Iterator[Client]:
    """The client library's Client for ``profile``, its errors raised as NotifyctlErrors. Without
    retries: a 429 or 503 is exit code 4 at once, for the operator (or script) to decide."""
    client = Client(profile.gateway_url, ssl_context=_ssl_context(profile), timeout=TIMEOUT_SECONDS, retry=NO_RETRIES)
    try:
        yield client
    except ApiError as exc:
        raise api_error(exc) from None
    except TransportError as exc:
        raise _transport_error(profile, exc) from None
    finally:
        client.close()


def answer(model: BaseModel) -> dict[str, Any]:
    """An answer as the gateway sent it (the fields it gave, nulls too), and what the library adds
    (``created``, ``replayed``)."""
    return model.model_dump(mode="json", exclude_unset=True)


# -- the one place errors are mapped -------------------------------------------------------


def _transport_error(profile: Profile, error: TransportError) -> NotifyctlError:
    url, exc = profile.gateway_url, error.__cause__
    ssl_error = error.cause_of(ssl.SSLError)
    if isinstance(ssl_error, ssl.SSLCertVerificationError):
        return RefusedError(
            f"the gateway at {url} presented a certificate that {profile.ca} does not trust "
            f"({ssl_error.verify_message}); is --ca / NOTIFYCTL_CA our CA, and the URL's host in the server certificate?"
        )
    if ssl_error is not None:
        return RefusedError(
            f"the gateway at {url} refused the client certificate {profile.cert} in the TLS handshake "
            f"({_ssl_reason(ssl_error)}): it is revoked, expired or not issued by the gateway's CA"
        )
    if isinstance(exc, httpx.ReadError | httpx.RemoteProtocolError | httpx.WriteError):
        # TLS 1.3: the server checks the client certificate after the client considers the
        # handshake done, so a refusal shows as a connection closed on the first request.
        return RefusedError(
            f"the gateway at {url} closed the connection after the TLS handshake: it refused the client certificate "
            f"{profile.cert} (revoked, expired or not issued by the gateway's CA)"
        )
    if isinstance(exc, httpx.TimeoutException):
        return UnavailableError(f"the gateway at {url} did not answer within {TIMEOUT_SECONDS:g} s")
    return UnavailableError(f"cannot reach the gateway at {url}: {_os_reason(error)}; is it running (make up)?")


def api_error(exc: ApiError) -> NotifyctlError:
    details: dict[str, Any] = {"field": exc.field} if exc.field else {}
    if isinstance(exc, Unauthenticated | Forbidden):
        return RefusedError(exc.message, status=exc.status, details=details)
    if isinstance(exc, RateLimited | ServiceUnavailable | ServerError):
        if exc.retry_after is not None:
            details["retry_after_seconds"] = int(exc.retry_after) if exc.retry_after.is_integer() else exc.retry_after
        return UnavailableError(exc.message, status=exc.status, details=details)
    return FailedError(exc.message, status=exc.status, details=details)


def _ssl_context(profile: Profile) -> ssl.SSLContext:
    for label, path in (("CA certificate", profile.ca), ("client certificate", profile.cert), ("private key", profile.key)):
        if not path.is_file():
            raise RefusedError(
                f"the {label} {path} does not exist; pass --ca/--cert/--key or set NOTIFYCTL_CA/NOTIFYCTL_CERT/NOTIFYCTL_KEY "
                "(notifyctl certs issue NAME --role ... creates a client certificate)"
            )
    _refuse_expired(profile.cert)
    try:
        context = ssl.create_default_context(cafile=str(profile.ca))
        context.load_cert_chain(str(profile.cert), str(profile.key))
    except (ssl.SSLError, OSError) as exc:
        raise RefusedError(f"cannot use {profile.cert} with {profile.key}: {_ssl_reason(exc)}") from None
    return context


def _refuse_expired(cert: Path) -> None:
    try:
        certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    except ValueError as exc:
        raise RefusedError(f"{cert} is not a PEM certificate: {exc}") from None
    now = datetime.now(UTC)
    if certificate.not_valid_after_utc < now:
        raise RefusedError(f"the client certificate {cert} expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if certificate.not_valid_before_utc > now:
        raise RefusedError(f"the client certificate {cert} is not valid before {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")


def _ssl_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason).replace("_", " ").lower() if reason else str(exc)


def _os_reason(error: TransportError) -> str:
    os_error = error.cause_of(OSError)
    if os_error is not None and getattr(os_error, "strerror", None):
        return str(os_error.strerror).lower()
    return str(error.__cause__ or error) or type(error.__cause__).__name__
