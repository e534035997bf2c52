"""The gateway's API over mutual TLS, with every failure turned into a NotifyctlError.

The certificate profile (gateway URL, CA, client certificate and key) comes from flags or from
``NOTIFYCTL_GATEWAY_URL``, ``NOTIFYCTL_CA``, ``NOTIFYCTL_CERT`` and ``NOTIFYCTL_KEY``; the
defaults are the local stack's (``https://localhost:8443`` and the files in ``mtls/``).
"""

from __future__ import annotations

import functools
import inspect
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer
from cryptography import x509

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


class GatewayClient:
    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self._http = httpx.Client(base_url=profile.gateway_url, verify=_ssl_context(profile), timeout=TIMEOUT_SECONDS)

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self._http.close()

    # -- recipients ----------------------------------------------------------------------

    def put_recipient(self, name: str, contacts: dict[str, str]) -> None:
        self._request("PUT", f"/recipients/{_segment(name)}", json=contacts)

    def get_recipient(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/recipients/{_segment(name)}").json()

    def delete_recipient(self, name: str) -> None:
        self._request("DELETE", f"/recipients/{_segment(name)}")

    def list_recipients(self, *, limit: int | None, cursor: str | None) -> dict[str, Any]:
        params = {key: value for key, value in (("limit", limit), ("cursor", cursor)) if value is not None}
        return self._request("GET", "/recipients", params=params).json()

    def get_preferences(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/recipients/{_segment(name)}/preferences").json()

    def put_preferences(self, name: str, preferences: dict[str, Any]) -> None:
        self._request("PUT", f"/recipients/{_segment(name)}/preferences", json=preferences)

    # -- templates -----------------------------------------------------------------------

    def put_template(self, name: str, content: dict[str, Any]) -> dict[str, Any]:
        response = self._request("PUT", f"/templates/{_segment(name)}", json=content)
        return {**response.json(), "created": response.status_code == 201}

    def get_template(self, name: str, *, version: int | None = None) -> dict[str, Any]:
        path = f"/templates/{_segment(name)}" + (f"/versions/{version}" if version is not None else "")
        return self._request("GET", path).json()

    def list_templates(self, *, limit: int | None, cursor: str | None) -> dict[str, Any]:
        params = {key: value for key, value in (("limit", limit), ("cursor", cursor)) if value is not None}
        return self._request("GET", "/templates", params=params).json()

    def delete_template(self, name: str) -> None:
        self._request("DELETE", f"/templates/{_segment(name)}")

    def preview_template(self, name: str, personalisation: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", f"/templates/{_segment(name)}/preview", json={"personalisation": personalisation}).json()

    # -- notifications -------------------------------------------------------------------

    def send(
        self,
        *,
        recipient: str,
        message: str | None,
        subject: str | None,
        channels: list[str] | None,
        idempotency_key: str | None,
        template: str | None = None,
        template_version: int | None = None,
        personalisation: dict[str, Any] | None = None,
        category: str | None = None,
        send_at: str | None = None,
    ) -> dict[str, Any]:
        optional = {
            "message": message,
            "subject": subject,
            "template": template,
            "template_version": template_version,
            "personalisation": personalisation,
            "category": category,
            "channels": channels or None,
            "send_at": send_at,
        }
        body: dict[str, Any] = {"recipient": recipient, **{key: value for key, value in optional.items() if value is not None}}
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        response = self._request("POST", "/notifications", json=body, headers=headers)
        return {**response.json(), "replayed": response.headers.get("Idempotent-Replayed") == "true"}

    def status(self, notification_id: str) -> dict[str, Any]:
        return self._request("GET", f"/notifications/{_segment(notification_id)}").json()

    def cancel(self, notification_id: str) -> dict[str, Any]:
        return self._request("POST", f"/notifications/{_segment(notification_id)}/cancel").json()

    # -- the one place errors are mapped ---------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from None
        if response.is_success:
            return response
        raise _http_error(response)

    def _transport_error(self, exc: httpx.TransportError) -> NotifyctlError:
        url = self.profile.gateway_url
        ssl_error = _find_cause(exc, ssl.SSLError)
        if isinstance(ssl_error, ssl.SSLCertVerificationError):
            return RefusedError(
                f"the gateway at {url} presented a certificate that {self.profile.ca} does not trust "
                f"({ssl_error.verify_message}); is --ca / NOTIFYCTL_CA our CA, and the URL's host in the server certificate?"
            )
        if ssl_error is not None:
            return RefusedError(
                f"the gateway at {url} refused the client certificate {self.profile.cert} in the TLS handshake "
                f"({_ssl_reason(ssl_error)}): it is revoked, expired or not issued by the gateway's CA"
            )
        if isinstance(exc, httpx.ReadError | httpx.RemoteProtocolError | httpx.WriteError):
            # TLS 1.3: the server checks the client certificate after the client considers the
            # handshake done, so a refusal shows as a connection closed on the first request.
            return RefusedError(
                f"the gateway at {url} closed the connection after the TLS handshake: it refused the client certificate "
                f"{self.profile.cert} (revoked, expired or not issued by the gateway's CA)"
            )
        if isinstance(exc, httpx.TimeoutException):
            return UnavailableError(f"the gateway at {url} did not answer within {TIMEOUT_SECONDS:g} s")
        return UnavailableError(f"cannot reach the gateway at {url}: {_os_reason(exc)}; is it running (make up)?")


def _http_error(response: httpx.Response) -> NotifyctlError:
    try:
        body = response.json()
        message = str(body.get("message") or response.reason_phrase)
        field = body.get("field")
    except ValueError:
        message, field = response.text.strip()[:200] or response.reason_phrase, None
    details: dict[str, Any] = {"field": field} if field else {}
    status = response.status_code
    if status in (401, 403):
        return RefusedError(message, status=status, details=details)
    if status == 429 or status >= 500:
        retry_after = response.headers.get("Retry-After")
        if retry_after:
            details["retry_after_seconds"] = int(retry_after) if retry_after.isdigit() else retry_after
        return UnavailableError(message, status=status, details=details)
    return FailedError(message, status=status, details=details)


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


def _segment(value: str) -> str:
    return quote(value, safe="")


def _find_cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _ssl_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason).replace("_", " ").lower() if reason else str(exc)


def _os_reason(exc: BaseException) -> str:
    os_error = _find_cause(exc, OSError)
    if os_error is not None and getattr(os_error, "strerror", None):
        return str(os_error.strerror).lower()
    return str(exc) or type(exc).__name__
