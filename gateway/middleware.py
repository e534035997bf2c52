"""One pure-ASGI middleware for every request: metrics, a body size limit, and the last line of
defence that turns an unexpected error into a JSON 500 (or 503 when the database is down)."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import error_response
from shared.database import is_database_unavailable
from shared.logging import get_logger

log = get_logger(__name__)

REQUESTS = Counter("gateway_requests_total", "HTTP requests by route and status.", ["method", "route", "status"])
LATENCY = Histogram(
    "gateway_request_duration_seconds",
    "HTTP request latency by route.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


SHED = Counter("gateway_requests_shed_total", "Requests answered 503 at once because too many were in progress.")


class _BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than {limit} bytes")
        self.limit = limit


class GatewayMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_in_flight: int,
        max_bulk_body_bytes: int | None = None,
        bulk_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app, self.max_body_bytes, self.max_in_flight = app, max_body_bytes, max_in_flight
        # Paths whose bodies carry many notifications, and their own limit.
        self.max_bulk_body_bytes, self.bulk_paths = max_bulk_body_bytes or max_body_bytes, bulk_paths
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            SHED.inc()
            REQUESTS.labels(scope["method"], "unmatched", "503").inc()
            response = error_response(
                503, "the gateway is at capacity; nothing was stored, retry shortly", headers={"Retry-After": "1"}
            )
            await response(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self._handle(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500
        response_started = False
        received = 0
        body_too_large = False
        limit = self.max_bulk_body_bytes if scope["path"] in self.bulk_paths else self.max_body_bytes

        async def record_and_send(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
            await send(message)

        async def send_and_record(message: Message) -> None:
            if body_too_large:
                # FastAPI turns any error raised while it reads a body into a 400 of its own; a
                # chunked body (no Content-Length to refuse up front) over the limit is a 413
                # whatever the app made of it, so its own answer is replaced.
                if message["type"] == "http.response.start" and not response_started:
                    await self._response_for(_BodyTooLarge(limit))(scope, receive, record_and_send)
                return
            await record_and_send(message)

        async def receive_limited() -> Message:
            nonlocal received, body_too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    body_too_large = True
                    raise _BodyTooLarge(limit)
            return message

        try:
            for name, value in scope["headers"]:
                if name == b"content-length" and value.isdigit() and int(value) > limit:
                    raise _BodyTooLarge(limit)
            await self.app(scope, receive_limited, send_and_record)
        except Exception as exc:  # noqa: BLE001 - nothing may escape as a bare 500 page
            if response_started:
                log.exception("error_after_response_started")
            else:
                response = self._response_for(exc)
                await response(scope, receive, record_and_send)
        finally:
            route = scope.get("route")
            route_name = getattr(route, "path", "unmatched")
            REQUESTS.labels(scope["method"], route_name, str(status)).inc()
            LATENCY.labels(scope["method"], route_name).observe(time.perf_counter() - started)

    def _response_for(self, exc: Exception):  # noqa: ANN202
        if isinstance(exc, _BodyTooLarge):
            return error_response(413, f"the request body is larger than {exc.limit} bytes")
        if is_database_unavailable(exc):
            log.warning("database_unavailable", error=f"{type(exc).__name__}: {exc}")
            return error_response(
                503, "the database is unavailable; nothing was stored, try again shortly", headers={"Retry-After": "2"}
            )
        log.exception("unhandled_error")
        return error_response(500, "internal error; it has been logged")
