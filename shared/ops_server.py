"""The plain-HTTP operations port every service exposes: ``/healthz``, ``/readyz``, ``/metrics``.

It runs inside the service's own event loop (aiohttp), on its own port, bound to 127.0.0.1 by
default, so probes and scrapes never compete with the service's real traffic for its port.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

ReadinessCheck = Callable[[], Awaitable[None]]
"""Raises (anything) when the dependency is not usable; the message is shown on /readyz."""

READINESS_TIMEOUT_SECONDS = 3.0


class OpsServer:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        readiness_checks: Mapping[str, ReadinessCheck],
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self._host, self._port = host, port
        self._checks = dict(readiness_checks)
        self._registry = registry
        self._runner: web.AppRunner | None = None
        self.draining = False  # set during shutdown: /readyz turns 503 so traffic moves away

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, _request: web.Request) -> web.Response:
        results = await asyncio.gather(*(self._run_check(check) for check in self._checks.values()))
        checks = dict(zip(self._checks, results, strict=True))
        ready = not self.draining and all(result == "ok" for result in results)
        body = {"status": "ready" if ready else "not ready", "checks": checks}
        if self.draining:
            body["draining"] = True
        return web.json_response(body, status=200 if ready else 503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(self._registry))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    @staticmethod
    async def _run_check(check: ReadinessCheck) -> str:
        try:
            await asyncio.wait_for(check(), READINESS_TIMEOUT_SECONDS)
        except TimeoutError:
            return f"timed out after {READINESS_TIMEOUT_SECONDS:g} s"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported verbatim
            return f"{type(exc).__name__}: {exc}"
        return "ok"
