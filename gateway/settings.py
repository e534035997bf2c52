"""Gateway settings. Every field is documented in the README's settings table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from gateway.content.schemas import CATEGORY_PATTERN, CATEGORY_RULES

from mtls.paths import PkiPaths
from shared.callback_targets import CallbackTargetSettings
from shared.settings import ServerSettings


class RateLimit(BaseModel):
    """A token bucket: ``rate`` requests per second on average, bursts of up to ``burst``."""

    rate: float = Field(gt=0)
    burst: int = Field(ge=1)


class GatewaySettings(ServerSettings, CallbackTargetSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=".env", extra="ignore", populate_by_name=True)

    host: str = "0.0.0.0"
    port: int = Field(default=8443, ge=1, le=65535)
    # Listen with SO_REUSEPORT, so that several gateway processes on one host share the port (the
    # kernel spreads connections between them); off, a second process on the port fails to start.
    reuse_port: bool = False
    # In $MTLS_DIR (default mtls/), read when the settings are.
    tls_cert: Path = Field(default_factory=lambda: PkiPaths.in_directory().server_cert)
    tls_key: Path = Field(default_factory=lambda: PkiPaths.in_directory().server_key)
    tls_ca: Path = Field(default_factory=lambda: PkiPaths.in_directory().ca_cert)
    # A CRL turns on revocation checking for every client certificate; the file is re-read when
    # it changes, so revoking needs no restart.
    tls_crl: Path | None = None
    crl_reload_interval_seconds: float = Field(default=5.0, gt=0)

    # Unset: resolved at start-up with CreateTopic (fine locally; in AWS give the ARN, since the
    # task role may only publish).
    topic_arn: str | None = None

    # The relay republishes outbox rows the immediate publish did not confirm; a fresh row
    # waits this long first so the two do not race for it.
    outbox_grace_seconds: float = Field(default=5.0, ge=0)
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0)
    outbox_batch_size: int = Field(default=100, ge=1, le=1000)
    outbox_max_backoff_seconds: float = Field(default=60.0, gt=0)

    # A CSV job's rows are released into the outbox at this rate, a relay batch
    # (GATEWAY_OUTBOX_BATCH_SIZE rows) at a time, so that a large job never stands in front of a
    # scheduled one-off in the relay (gateway/jobs/service.py).
    job_release_rows_per_second: float = Field(default=500.0, gt=0)

    max_body_bytes: int = Field(default=65_536, ge=1024)
    # POST /notifications/batch (up to 1,000 items) and POST /jobs (a CSV of up to 50,000 rows);
    # GATEWAY_MAX_BODY_BYTES is for one.
    max_bulk_body_bytes: int = Field(default=20_971_520, ge=1024)
    # Beyond this many requests in progress, answer 503 at once rather than queue: under overload
    # a quick "retry later" beats a slow answer the client has given up on. About what one process
    # accepts in 100 ms: more only queues (256 gave 503s and 201s a p99 of seconds at twice
    # capacity, 48 one of about 0.1 and 0.25 s); far fewer sheds so much that the 503s themselves
    # take the CPU (16: 503 p99 4.6 s). bench.gateway's ratio uses 64 connections, never shed.
    max_in_flight_requests: int = Field(default=64, ge=1)
    # How long a request waits for a database connection before it is answered 503.
    database_pool_timeout_seconds: float = Field(default=2.0, gt=0)
    recipients_page_size: int = Field(default=50, ge=1, le=1000)
    templates_page_size: int = Field(default=50, ge=1, le=1000)
    # Categories whose notifications ignore the recipients' opt-outs (a password reset still
    # arrives). Comma-separated in the environment: GATEWAY_CRITICAL_CATEGORIES=security,fraud.
    critical_categories: Annotated[frozenset[str], NoDecode] = frozenset({"security"})

    # Per client certificate (CN), shared by every replica through Postgres (gateway/client_rate_limit.py).
    # Off by default: it costs a database round trip per request, and most deployments put
    # the gateway in front of a handful of trusted clients.
    rate_limit_enabled: bool = False
    rate_limit_per_second: float = Field(default=50.0, gt=0)
    rate_limit_burst: int = Field(default=100, ge=1)
    # JSON: {"<client CN>": {"rate": 5, "burst": 10}, ...}; clients not named get the defaults.
    rate_limit_overrides: dict[str, RateLimit] = Field(default_factory=dict)

    # Status callbacks (PUT /callbacks): the URL rules are CallbackTargetSettings' (shared with
    # the callback sender); after POST /callbacks/rotate-secret the previous secret still signs
    # beside the new one this long, so receivers can move over without refusing a callback.
    callbacks_rotation_grace_seconds: float = Field(default=86_400.0, ge=0, validation_alias="CALLBACKS_ROTATION_GRACE_SECONDS")

    # Not named _comma_separated: that is CallbackTargetSettings' validator, which this would hide.
    @field_validator("critical_categories", mode="before")
    @classmethod
    def _critical_categories_comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        for category in value if isinstance(value, list | set | frozenset | tuple) else ():
            if not isinstance(category, str) or not CATEGORY_PATTERN.fullmatch(category):
                raise ValueError(f"GATEWAY_CRITICAL_CATEGORIES: {category!r} is not a category ({CATEGORY_RULES})")
        return value

    def rate_limit_for(self, client: str) -> RateLimit:
        return self.rate_limit_overrides.get(client) or RateLimit(rate=self.rate_limit_per_second, burst=self.rate_limit_burst)
