"""The gateway's FastAPI application and its lifespan (database, SNS, publisher, relay, ops port)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.models import OpenAPI
from fastapi.openapi.utils import get_openapi

from gateway.callbacks.endpoints import router as callbacks_router
from gateway.callbacks.service import CallbackService
from gateway.client_rate_limit import ClientRateLimiter, RateLimited
from gateway.errors import install_error_handlers
from gateway.jobs.endpoints import JOB_PATHS
from gateway.jobs.endpoints import router as jobs_router
from gateway.jobs.service import JobService
from gateway.middleware import GatewayMiddleware
from gateway.notifications.endpoints import BULK_PATHS, accept_route, openapi_operation
from gateway.notifications.endpoints import router as notifications_router
from gateway.notifications.service import NotificationService
from gateway.outbox.publisher import OutboxPublisher, SnsPublisher
from gateway.outbox.relay import OutboxRelay
from gateway.outbox.sns_batch import SnsBatchClient
from gateway.recipients.endpoints import router as recipients_router
from gateway.settings import GatewaySettings
from gateway.suppressions.endpoints import router as suppressions_router
from gateway.templates.endpoints import router as templates_router
from gateway.templates.service import TemplateService
from gateway.tls import CrlReloader
from shared.aws import aws_clients
from shared.database import Database
from shared.logging import get_logger
from shared.ops_server import OpsServer
from shared.topology import topic_arn

log = get_logger(__name__)

def create_app(settings: GatewaySettings, *, ssl_context: ssl.SSLContext | None = None) -> FastAPI:
    app = FastAPI(
        title="Notifications gateway",
        version="1.0.0",
        summary="Register recipients and send them notifications by SMS, email and Slack.",
        description="Every call needs a client certificate issued by our CA; its OU values are its roles "
        "(`recipients`, `notifications`, `templates`, `audit`). Errors are JSON objects with a human `message`.",
        lifespan=_lifespan,
        # The gateway's metrics are its own (Prometheus, gateway/middleware.py) and it traces
        # nothing: FastAPI's OpenTelemetry hooks, on by default, looked for a configured provider
        # in the environment on every request (2.6 % of the gateway's CPU under load).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.ssl_context = ssl_context
    app.state.rate_limiter = ClientRateLimiter(settings) if settings.rate_limit_enabled else None
    # One per process: the accept renders from the parsed versions it keeps.
    app.state.templates = TemplateService()
    # The rate limit costs a database round trip per request: when it is off, its dependency is
    # not even solved (and the accept does not call it).
    rate_limited = [RateLimited] if settings.rate_limit_enabled else []
    app.include_router(recipients_router, dependencies=rate_limited)
    # First: the router tries routes in order, and this is the one nearly every request takes.
    app.router.routes.insert(0, accept_route)
    app.include_router(notifications_router, dependencies=rate_limited)
    app.include_router(callbacks_router, dependencies=rate_limited)
    app.state.callbacks = CallbackService(
        policy=settings.callback_target_policy, rotation_grace_seconds=settings.callbacks_rotation_grace_seconds
    )
    app.include_router(templates_router, dependencies=rate_limited)
    app.include_router(suppressions_router, dependencies=rate_limited)
    app.include_router(jobs_router, dependencies=rate_limited)
    install_error_handlers(app)
    app.add_middleware(
        GatewayMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_in_flight=settings.max_in_flight_requests,
        max_bulk_body_bytes=settings.max_bulk_body_bytes,
        bulk_paths=BULK_PATHS | JOB_PATHS,
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: GatewaySettings = app.state.settings
    # Requests (the accept and the other routes) share one pool; publishing has a small one of
    # its own, so that a burst of requests never starves the deletes that confirm what SNS has.
    database = await Database.for_service(settings, acquire_timeout=settings.database_pool_timeout_seconds).open()
    publishing_database = await Database.for_service(settings, size=2).open()
    app.state.database = database
    # The botocore client finds the topic and answers readiness; publications are PublishBatch
    # calls of the gateway's own, on its endpoint and credentials (gateway/outbox/sns_batch.py).
    async with aws_clients(settings, "sns") as sns, SnsBatchClient.for_client(sns) as publish_batch:
        sns_publisher = SnsPublisher(publish_batch, settings.topic_arn or await topic_arn(sns))
        publisher = OutboxPublisher(sns=sns_publisher, database=publishing_database, hand_over_after=settings.outbox_grace_seconds)
        publisher.start()
        relay = OutboxRelay(
            sns=sns_publisher,
            database=publishing_database,
            poll_interval=settings.outbox_poll_interval_seconds,
            batch_size=settings.outbox_batch_size,
            max_backoff=settings.outbox_max_backoff_seconds,
        )
        app.state.notifications = NotificationService(
            database=database,
            publisher=publisher,
            outbox_grace_seconds=settings.outbox_grace_seconds,
            templates=app.state.templates,
            critical_categories=settings.critical_categories,
            on_scheduled=relay.expect,
        )
        app.state.jobs = JobService(
            database=database,
            templates=app.state.templates,
            critical_categories=settings.critical_categories,
            release_rows_per_second=settings.job_release_rows_per_second,
            release_chunk_rows=settings.outbox_batch_size,
            on_scheduled=relay.expect,
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
            readiness_checks={"database": database.check, "sns": sns_reachable},
        )
        await ops.start()
        log.info("gateway_started", port=settings.port, ops_port=settings.ops_port, topic=sns_publisher.topic_arn)
        try:
            yield
        finally:
            ops.draining = True
            await publisher.close()
            for task in background:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*background, return_exceptions=True)
            await ops.stop()
            await database.close()
            await publishing_database.close()
            log.info("gateway_stopped")


def _openapi(app: FastAPI) -> dict:
    """The OpenAPI document, saying what the API really answers: 400 (not 422) for bad input."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, summary=app.summary, description=app.description, routes=app.routes)
    _add_operation(schema, accept_route.path, "post", *openapi_operation())
    # As get_openapi renders its own: through the OpenAPI models, None left out.
    schema = jsonable_encoder(OpenAPI(**schema), by_alias=True, exclude_none=True)
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


def _add_operation(schema: dict, path: str, method: str, operation: dict, components: dict) -> None:
    """Document an operation that is not a FastAPI route, listed before the paths under it."""
    paths = list(schema["paths"].items())
    position = next((index for index, (other, _) in enumerate(paths) if other.startswith(path)), len(paths))
    item = dict(schema["paths"].get(path, {}), **{method: operation})
    schema["paths"] = dict([*(entry for entry in paths[:position] if entry[0] != path), (path, item), *(entry for entry in paths[position:] if entry[0] != path)])
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.update({name: definition for name, definition in components.items() if name not in schemas})
    schema["components"]["schemas"] = dict(sorted(schemas.items()))
