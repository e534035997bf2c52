"""The gateway's FastAPI application and its lifespan (database, SNS, publisher, relay, ops port)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from botocore.config import Config
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from gateway.errors import install_error_handlers
from gateway.middleware import GatewayMiddleware
from gateway.notifications.endpoints import PostNotificationShortcut
from gateway.notifications.endpoints import router as notifications_router
from gateway.publisher import NotificationPublisher, OutboxRelay, SnsPublisher
from gateway.rate_limit import RateLimited, RateLimiter
from gateway.recipients.endpoints import router as recipients_router
from gateway.settings import GatewaySettings
from gateway.tls import CrlReloader
from shared.aws import CLIENT_CONFIG, aws_clients
from shared.database import check_database, create_engine, create_pool
from shared.logging import get_logger
from shared.ops_server import OpsServer
from shared.topology import topic_arn

log = get_logger(__name__)

# The gateway builds its SNS requests itself, always the same shape; botocore's check of every
# parameter of every PublishBatch entry is CPU spent on every notification, for nothing.
SNS_CLIENT_CONFIG = CLIENT_CONFIG.merge(Config(parameter_validation=False))


def create_app(settings: GatewaySettings, *, ssl_context: ssl.SSLContext | None = None) -> FastAPI:
    app = FastAPI(
        title="Notifications gateway",
        version="1.0.0",
        summary="Register recipients and send them notifications by SMS, email and Slack.",
        description="Every call needs a client certificate issued by our CA; its OU values are its roles "
        "(`recipients`, `notifications`). Errors are JSON objects with a human `message`.",
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.ssl_context = ssl_context
    app.state.rate_limiter = RateLimiter(settings) if settings.rate_limit_enabled else None
    # The rate limit costs a database round trip per request: when it is off, its dependency is
    # not even solved.
    rate_limited = [RateLimited] if settings.rate_limit_enabled else []
    app.include_router(recipients_router, dependencies=rate_limited)
    app.include_router(notifications_router, dependencies=rate_limited)
    install_error_handlers(app)
    if not settings.rate_limit_enabled:
        # The rate limit is a dependency of the route: with it on, every request takes the route.
        app.add_middleware(PostNotificationShortcut)
    app.add_middleware(  # the outermost: it wraps the shortcut too
        GatewayMiddleware, max_body_bytes=settings.max_body_bytes, max_in_flight=settings.max_in_flight_requests
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: GatewaySettings = app.state.settings
    # Requests: no overflow (overflow connections would be closed and reopened under load) and
    # autocommit (every write is one statement). Publishing has a small pool of its own, so that a
    # burst of requests never starves the deletes that confirm what SNS has.
    engine = create_engine(
        settings, max_overflow=0, pool_timeout=settings.database_pool_timeout_seconds, autocommit=True
    )
    publishing_engine = create_engine(settings, pool_size=2, max_overflow=0, autocommit=True)
    app.state.engine = engine
    # POST /notifications runs on asyncpg directly (gateway/deps.py's PooledConnection).
    app.state.database = await create_pool(settings)
    async with aws_clients(settings, "sns", config=SNS_CLIENT_CONFIG) as sns:
        sns_publisher = SnsPublisher(sns, settings.topic_arn or await topic_arn(sns))
        app.state.publisher = NotificationPublisher(
            sns=sns_publisher, engine=publishing_engine, hand_over_after=settings.outbox_grace_seconds
        )
        relay = OutboxRelay(
            sns=sns_publisher,
            engine=publishing_engine,
            poll_interval=settings.outbox_poll_interval_seconds,
            batch_size=settings.outbox_batch_size,
            max_backoff=settings.outbox_max_backoff_seconds,
        )
        background = [asyncio.create_task(relay.run(), name="outbox-relay")]
        if settings.tls_crl is not None and app.state.ssl_context is not None:
            reloader = CrlReloader(app.state.ssl_context, settings.tls_crl, settings.crl_reload_interval_seconds)
            background.append(asyncio.create_task(reloader.run(), name="crl-reloader"))

        async def sns_reachable() -> None:
            await sns.get_topic_attributes(TopicArn=sns_publisher.topic_arn)

        ops = OpsServer(
            host=settings.ops_host,
            port=settings.ops_port,
            readiness_checks={"database": lambda: check_database(engine), "sns": sns_reachable},
        )
        await ops.start()
        log.info("gateway_started", port=settings.port, ops_port=settings.ops_port, topic=sns_publisher.topic_arn)
        try:
            yield
        finally:
            ops.draining = True
            await app.state.publisher.close()
            for task in background:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*background, return_exceptions=True)
            await ops.stop()
            await engine.dispose()
            await app.state.database.close()
            await publishing_engine.dispose()
            log.info("gateway_stopped")


def _openapi(app: FastAPI) -> dict:
    """The OpenAPI document, saying what the API really answers: 400 (not 422) for bad input."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, summary=app.summary, description=app.description, routes=app.routes)
    error_body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            # Answered by the middleware, for every operation, so no route declares them.
            responses.setdefault("503", {"description": "The database is unavailable; try again (see Retry-After).", "content": error_body})
            if "requestBody" in operation:
                responses.setdefault("413", {"description": "The request body is too large.", "content": error_body})
    for name in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(name, None)
    app.openapi_schema = schema
    return schema
