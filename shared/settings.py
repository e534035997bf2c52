"""The settings base every service builds on.

Every setting has a default that works against the local stack (`make up`); production overrides
them through the environment. Shared settings are unprefixed (``DATABASE_URL``,
``AWS_ENDPOINT_URL``) because every process of the system reads the same value.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_core import to_jsonable_python
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_AWS_ENDPOINT = "http://localhost:4566"
LOCAL_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/notifications"
# What an AWS region's name looks like (us-east-1, eu-west-1, ap-southeast-2, us-gov-west-1, cn-north-1).
AWS_REGION_PATTERN = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}")

# Each service's plain-HTTP ops port (/healthz, /readyz, /metrics); a service gives its default as
# ``ops_port: OpsPort = 9001``.
OpsPort = Annotated[int, Field(ge=0, le=65535)]


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field(default=LOCAL_DATABASE_URL, validation_alias="DATABASE_URL")
    database_pool_size: int = Field(default=10, validation_alias="DATABASE_POOL_SIZE", ge=1)

    # Empty means "the real AWS endpoints"; the default is the local emulator on :4566.
    aws_endpoint_url: str | None = Field(default=LOCAL_AWS_ENDPOINT, validation_alias="AWS_ENDPOINT_URL")
    aws_region: str = Field(default="us-east-1", validation_alias="AWS_REGION")
    aws_access_key_id: str | None = Field(default=None, validation_alias="AWS_ACCESS_KEY_ID")
    aws_secret_access_key: str | None = Field(default=None, validation_alias="AWS_SECRET_ACCESS_KEY")

    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    log_format: str = Field(default="json", validation_alias="LOG_FORMAT", pattern="^(json|console)$")

    @field_validator("aws_endpoint_url", mode="before")
    @classmethod
    def _empty_endpoint_means_aws(cls, value: str | None) -> str | None:
        return value or None

    def aws_client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for every AWS client of this service."""
        kwargs: dict[str, str] = {"region_name": self.aws_region}
        if self.aws_endpoint_url:
            kwargs["endpoint_url"] = self.aws_endpoint_url
            # Emulators accept any credentials; do not make local users configure fake ones.
            kwargs["aws_access_key_id"] = self.aws_access_key_id or "test"
            kwargs["aws_secret_access_key"] = self.aws_secret_access_key or "test"
        elif self.aws_access_key_id and self.aws_secret_access_key:
            kwargs["aws_access_key_id"] = self.aws_access_key_id
            kwargs["aws_secret_access_key"] = self.aws_secret_access_key
        return kwargs



class ServerSettings(ServiceSettings):
    """The settings of a long-running service: the gateway and the senders, which serve an ops port."""

    # Under each service's prefix (GATEWAY_OPS_PORT, SMS_SENDER_OPS_PORT, ...). Loopback by
    # default: a container sets the host to 0.0.0.0 to be reachable.
    ops_host: str = "127.0.0.1"
    ops_port: OpsPort = 9000

def to_asyncpg_url(url: str) -> str:
    """DATABASE_URL in SQLAlchemy's asyncpg dialect (for the migrations)."""
    return "postgresql+asyncpg://" + _without_scheme(url)


def postgres_dsn(url: str) -> str:
    """DATABASE_URL as asyncpg takes it (``postgresql://``), whatever scheme the user wrote."""
    return "postgresql://" + _without_scheme(url)


def _without_scheme(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return url[len(prefix):]
    raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got {url!r}")


def environment_name(settings_cls: type[BaseSettings], field_name: str) -> str:
    """The environment variable a settings field is read from (upper-case)."""
    alias = settings_cls.model_fields[field_name].validation_alias
    if isinstance(alias, str):
        return alias.upper()
    return f"{settings_cls.model_config.get('env_prefix', '') or ''}{field_name}".upper()


def environment_names(settings_cls: type[BaseSettings]) -> set[str]:
    """The environment variables a settings class reads (upper-case), for docs and compose checks."""
    return {environment_name(settings_cls, name) for name in settings_cls.model_fields}


def environment_for(settings_cls: type[BaseSettings], **values: Any) -> dict[str, str]:
    """The environment variables that give a process reading ``settings_cls`` these values.

    ``values`` are by field name (``database_url=...``, ``ops_port=9100``) and are validated here
    first, so a misspelt setting or a bad value fails in the caller, not in the process it starts.
    Only the given fields are returned; the process reads the rest from its own environment.
    """
    unknown = sorted(set(values) - set(settings_cls.model_fields))
    if unknown:
        raise ValueError(f"{settings_cls.__name__} has no setting {', '.join(unknown)}")
    settings = settings_cls(**values)
    return {environment_name(settings_cls, name): _environment_value(getattr(settings, name)) for name in values}


def _environment_value(value: Any) -> str:
    if value is None:
        return ""  # what the settings read as "not set" (an empty AWS_ENDPOINT_URL: the real AWS)
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float | Path):
        return str(value)
    return json.dumps(to_jsonable_python(value))
