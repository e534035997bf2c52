"""``python -m gateway``: the gateway on uvicorn (uvloop + httptools) with mutual TLS."""

from __future__ import annotations

import socket
import sys

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from gateway.tls import MtlsHttpToolsProtocol, build_server_context
from shared.logging import configure_logging, get_logger


def main() -> int:
    settings = GatewaySettings()
    configure_logging(level=settings.log_level, fmt=settings.log_format, service="gateway")
    log = get_logger("gateway")
    for setting, path in (("GATEWAY_TLS_CERT", settings.tls_cert), ("GATEWAY_TLS_KEY", settings.tls_key), ("GATEWAY_TLS_CA", settings.tls_ca)):
        if not path.is_file():
            print(f"gateway: {setting} file {path} does not exist; create certificates with mtls/generate.sh", file=sys.stderr)
            return 2
    if settings.tls_crl is not None and not settings.tls_crl.is_file():
        print(f"gateway: GATEWAY_TLS_CRL file {settings.tls_crl} does not exist; write one with `python -m mtls crl`", file=sys.stderr)
        return 2
    ssl_context = build_server_context(cert=settings.tls_cert, key=settings.tls_key, ca=settings.tls_ca, crl=settings.tls_crl)
    config = uvicorn.Config(
        create_app(settings, ssl_context=ssl_context),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=MtlsHttpToolsProtocol,
        ssl_context_factory=lambda _config, _default: ssl_context,
        lifespan="on",
        access_log=False,  # the metrics count every request; a log line each would cost more
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    log.info("gateway_starting", host=settings.host, port=settings.port, crl=str(settings.tls_crl) if settings.tls_crl else None)
    server = uvicorn.Server(config)
    if settings.reuse_port:
        try:
            listener = reuse_port_socket(settings.host, settings.port)
        except OSError as exc:
            print(f"gateway: cannot listen on {settings.host}:{settings.port} with SO_REUSEPORT: {exc}", file=sys.stderr)
            return 1
        server.run(sockets=[listener])
    else:
        server.run()
    return 0 if server.started else 1


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket that other processes may bind too (SO_REUSEPORT): the kernel then
    spreads new connections over every process listening on the port. uvicorn does not set the
    option itself, so the gateway binds the socket and hands it over."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((host, port))
    listener.set_inheritable(False)
    return listener


if __name__ == "__main__":
    raise SystemExit(main())
