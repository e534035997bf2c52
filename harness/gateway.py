"""The gateway as a real process (``python -m gateway``, uvicorn with mutual TLS), and its clients:
httpx and curl presenting our CA's client certificates."""

from __future__ import annotations

import ssl
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gateway.settings import GatewaySettings
from mtls.paths import CertificatePair, PkiPaths
from shared.settings import environment_for, environment_names
from stack.network import free_port, wait_for_http
from stack.processes import REPO_ROOT, ManagedProcess

# Quicker than production where the tests wait on them: the CRL re-read, the outbox relay. And
# callbacks to the tests' receivers on localhost allowed, as the local stack allows them.
TEST_GATEWAY_SETTINGS: dict[str, Any] = {
    "crl_reload_interval_seconds": 0.5,
    "outbox_grace_seconds": 2,
    "outbox_poll_interval_seconds": 0.5,
    "outbox_max_backoff_seconds": 2,
    "callbacks_allow_localhost": True,
}
# The gateway's own defaults for those: what production runs (the benchmarks).
PRODUCTION_GATEWAY_SETTINGS: dict[str, Any] = {name: GatewaySettings.model_fields[name].default for name in TEST_GATEWAY_SETTINGS}


@dataclass
class Certificates:
    """A directory of our CA's certificates (file names from ``mtls.paths``)."""

    directory: Path

    @property
    def paths(self) -> PkiPaths:
        return PkiPaths.in_directory(self.directory)

    @property
    def ca(self) -> Path:
        return self.paths.ca_cert

    @property
    def crl(self) -> Path:
        return self.paths.crl

    @property
    def server_cert(self) -> Path:
        return self.paths.server_cert

    @property
    def server_key(self) -> Path:
        return self.paths.server_key

    def client(self, name: str = "client") -> CertificatePair:
        return self.paths.certificate_pair(name)


@dataclass
class GatewayProcess:
    process: ManagedProcess
    port: int
    ops_port: int
    certificates: Certificates
    database_url: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def ops_url(self) -> str:
        return f"http://127.0.0.1:{self.ops_port}"

    def client(self, name: str = "client", **kwargs: Any) -> httpx.Client:
        """An httpx client presenting the named client certificate."""
        return httpx.Client(base_url=self.base_url, verify=self.ssl_context(name), timeout=15, **kwargs)

    def async_client(self, name: str = "client", **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, verify=self.ssl_context(name), timeout=15, **kwargs)

    def ssl_context(self, name: str | None = "client", *, certificates: Certificates | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.certificates.ca))
        if name is not None:
            client = (certificates or self.certificates).client(name)
            context.load_cert_chain(str(client.cert), str(client.key))
        return context

    def curl(self, *args: str, name: str = "client") -> subprocess.CompletedProcess[str]:
        """The curl binary with a client certificate; args are curl's (method, headers, path...)."""
        client = self.certificates.client(name)
        argv = ["curl", "-sS", "--cacert", str(self.certificates.ca), "--cert", str(client.cert), "--key", str(client.key)]
        return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=30, check=False)

    def stop(self) -> None:
        self.process.stop()


def start_gateway(
    *,
    certificates: Certificates,
    database_url: str,
    aws_endpoint_url: str,
    log_dir: Path,
    name: str = "gateway",
    settings: dict[str, Any] | None = None,
    extra_env: dict[str, str] | None = None,
    port: int | None = None,
) -> GatewayProcess:
    """A gateway on free ports (or on ``port``: another gateway's, with ``GATEWAY_REUSE_PORT``), ready. ``settings`` (by field name; the tests' quicker timings
    unless given) and ``extra_env`` (by environment variable, e.g. ``GATEWAY_RATE_LIMIT_ENABLED``)
    go on top of what it needs to reach its dependencies."""
    unknown = sorted(set(extra_env or {}) - environment_names(GatewaySettings))
    if unknown:
        raise ValueError(f"not gateway settings: {', '.join(unknown)}")
    port, ops_port = port or free_port(), free_port()
    env = {
        **environment_for(
            GatewaySettings,
            database_url=database_url,
            aws_endpoint_url=aws_endpoint_url,
            host="127.0.0.1",
            port=port,
            ops_port=ops_port,
            tls_cert=certificates.server_cert,
            tls_key=certificates.server_key,
            tls_ca=certificates.ca,
            tls_crl=certificates.crl,
            log_format="json",
            **(TEST_GATEWAY_SETTINGS if settings is None else settings),
        ),
        **(extra_env or {}),
    }
    process = ManagedProcess(name, [sys.executable, "-m", "gateway"], env=env, cwd=REPO_ROOT, log_path=log_dir / f"{name}.log")
    process.start()
    gateway = GatewayProcess(process, port, ops_port, certificates, database_url, env)
    try:
        wait_for_http(f"{gateway.ops_url}/readyz", timeout=60, process=process)
    except Exception:
        process.stop()
        raise RuntimeError(f"the gateway did not become ready:\n{process.log_tail()}") from None
    return gateway
