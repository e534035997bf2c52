"""Mutual TLS for uvicorn: the server's SSL context, CRL reloading, and the client certificate
in the ASGI scope.

Stock uvicorn verifies client certificates but never shows them to the app. The protocol
subclass below fills ``scope["extensions"]["tls"]`` (the ASGI TLS extension) once per
connection, so handlers can see who is calling without re-parsing anything per request.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

from cryptography import x509
from prometheus_client import Gauge
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shared.logging import get_logger

log = get_logger(__name__)

# Alerts fire before either runs out: an expired server certificate or CRL refuses every client.
SERVER_CERTIFICATE_EXPIRY = Gauge(
    "gateway_server_certificate_expiry_timestamp_seconds", "When the gateway's server certificate expires (Unix time)."
)
CRL_NEXT_UPDATE = Gauge(
    "gateway_crl_next_update_timestamp_seconds",
    "The loaded CRL's nextUpdate (Unix time); after it every client is refused until the CRL is re-signed.",
)

# TLS 1.2 suites with forward secrecy and AEAD only; TLS 1.3 suites are all strong.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def build_server_context(*, cert: Path, key: Path, ca: Path, crl: Path | None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    _record_server_certificate_expiry(cert)
    context.load_verify_locations(cafile=str(ca))
    context.verify_mode = ssl.CERT_REQUIRED
    if crl is not None:
        # With this flag OpenSSL rejects every client when no valid CRL is loaded: a missing
        # or expired CRL fails closed. CrlReloader keeps the loaded CRL fresh.
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        context.load_verify_locations(cafile=str(crl))
        _record_crl_next_update(crl)
    context.set_alpn_protocols(["http/1.1"])
    return context


class CrlReloader:
    """Loads the CRL file into the live SSL context whenever it changes.

    An SSL context's store cannot drop a CRL, but when it holds several CRLs of one issuer,
    OpenSSL uses the most recent valid one, so loading the new file is enough. New handshakes
    see it at once; no restart, no dropped connections.
    """

    def __init__(self, context: ssl.SSLContext, crl: Path, interval_seconds: float) -> None:
        self._context, self._crl, self._interval = context, crl, interval_seconds
        self._loaded_mtime = self._mtime()

    def _mtime(self) -> float | None:
        try:
            return self._crl.stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def reload_if_changed(self) -> bool:
        mtime = self._mtime()
        if mtime is None or mtime == self._loaded_mtime:
            return False
        try:
            self._context.load_verify_locations(cafile=str(self._crl))
        except (ssl.SSLError, OSError) as exc:
            # A half-written file: keep the CRL we have and try again on the next tick.
            log.warning("crl_reload_failed", path=str(self._crl), error=str(exc))
            return False
        self._loaded_mtime = mtime
        _record_crl_next_update(self._crl)
        log.info("crl_reloaded", path=str(self._crl))
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self.reload_if_changed()


def _record_server_certificate_expiry(cert: Path) -> None:
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    SERVER_CERTIFICATE_EXPIRY.set(certificate.not_valid_after_utc.timestamp())


def _record_crl_next_update(crl: Path) -> None:
    try:
        next_update = x509.load_pem_x509_crl(crl.read_bytes()).next_update_utc
    except (OSError, ValueError) as exc:  # the SSL context loaded it; a metric must not stop that
        log.warning("crl_unreadable_for_metrics", path=str(crl), error=str(exc))
        return
    if next_update is not None:
        CRL_NEXT_UPDATE.set(next_update.timestamp())


class MtlsHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus the ASGI TLS extension in every request's scope."""

    _tls_extension: dict[str, Any] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return
        der = ssl_object.getpeercert(binary_form=True)
        cipher = ssl_object.cipher()
        self._tls_extension = {
            "server_cert": None,
            "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
            "client_cert_name": None,
            "client_cert_error": None,
            "tls_version": _TLS_VERSIONS.get(ssl_object.version() or "", None),
            "cipher_suite": None,
            # Not part of the ASGI spec: the DER bytes, so the app need not decode PEM again
            # (gateway/auth.py keeps the identity it reads from them here too, as
            # "client_identity": once per connection).
            "client_cert_der": der,
            "cipher_name": cipher[0] if cipher else None,
        }

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls_extension is not None:
            self.scope["extensions"] = {"tls": self._tls_extension}


# The ASGI TLS extension reports versions as the TLS record-layer numbers.
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
