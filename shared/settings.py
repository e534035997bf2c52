"""The settings base every service builds on.

Every setting has a default that works against the local stack (`make up`); production overrides
them through the environment. Shared settings are unprefixed (``DATABASE_URL``,
``AWS_ENDPOINT_URL``) because every process of the system reads the same value.
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_AWS_ENDPOINT = "http://localhost:4566"
LOCAL_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/notifications"


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
        """Keyword arguments for every aioboto3 client of this service."""
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


def environment_names(settings_cls: type[BaseSettings]) -> set[str]:
    """The environment variables a settings class reads (upper-case), for docs and compose checks."""
    prefix = settings_cls.model_config.get("env_prefix", "") or ""
    names: set[str] = set()
    for name, field in settings_cls.model_fields.items():
        alias = field.validation_alias
        names.add(alias.upper() if isinstance(alias, str) else f"{prefix}{name}".upper())
    return names
