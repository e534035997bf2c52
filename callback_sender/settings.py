"""The callback sender's settings (``CALLBACKS_*``). Every field is documented in the README."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from shared.callback_targets import CallbackTargetSettings
from shared.settings import OpsPort, ServerSettings


class CallbackSenderSettings(ServerSettings, CallbackTargetSettings):
    model_config = SettingsConfigDict(env_prefix="CALLBACKS_", env_file=".env", extra="ignore", populate_by_name=True)

    ops_port: OpsPort = 9004
    # Callbacks one process sends at once, and how many of those one client may hold: a client
    # whose receiver hangs holds at most this many slots, the others keep the rest.
    concurrency: int = Field(default=64, ge=1, le=1000)
    max_in_flight_per_client: int = Field(default=8, ge=1)
    # The whole request: connect, TLS, send, the response's status line and headers.
    timeout_seconds: float = Field(default=5.0, gt=0)
    poll_interval_seconds: float = Field(default=0.5, gt=0)
    # A claimed event is this sender's for this long; if it dies, another one sends it after.
    lease_seconds: float = Field(default=30.0, gt=0)
    backoff_base_seconds: float = Field(default=5.0, gt=0)
    backoff_max_seconds: float = Field(default=3600.0, gt=0)
    # An event still failing (connection errors, timeouts, 5xx, 429) this long after its status
    # change is given up on.
    retry_for_seconds: float = Field(default=86_400.0, gt=0)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # PEM certificates trusted besides the system's, for receivers with a private CA.
    ca_bundle: Path | None = None

    @model_validator(mode="after")
    def _lease_outlasts_a_request(self) -> CallbackSenderSettings:
        if self.lease_seconds <= self.timeout_seconds * 2:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds:g}) must be more than twice timeout_seconds ({self.timeout_seconds:g}), "
                "or another replica may send an event again while the first is still sending it"
            )
        return self
