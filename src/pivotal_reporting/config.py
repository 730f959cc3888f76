"""One typed Settings object, read from ``PIVOTAL_*`` environment variables.

Outside ``dev`` the settings refuse unsafe defaults: no generated JWT secret, no
embedded database.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_SECRET_BYTES = 32


def default_data_dir() -> Path:
    return platformdirs.user_data_path("pivotal-reporting", appauthor=False)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PIVOTAL_", extra="ignore")

    env: Literal["dev", "production"] = "dev"
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL 15+ URL; empty means start the embedded PostgreSQL.",
    )
    data_dir: Path = Field(default_factory=default_data_dir)
    export_dir: Path | None = Field(
        default=None, description="Where export files live (default: <data_dir>/exports)."
    )
    jwt_secret: SecretStr | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    public_base_path: str = Field(default="", description="Prefix of the API behind a proxy.")
    rate_limit_per_minute: int = Field(default=200, ge=1)
    rate_limit_storage_url: str | None = None
    rate_limit_key_prefix: str = Field(
        default="pivotal",
        description="Namespace of rate-limit keys (one Redis, several deployments).",
    )
    max_running_exports_per_org: int = Field(default=5, ge=1)
    metrics_org_label: bool = True
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token a scraper must send to GET /metrics on the API port; "
        "unset: /metrics on the API port answers 404.",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Serve /metrics (no token) on this separate port, bound to metrics_addr.",
    )
    metrics_addr: str = Field(
        default="127.0.0.1", description="Interface of the separate metrics listener."
    )
    forwarded_allow_ips: str = Field(
        default="",
        description="Comma-separated proxy addresses (or networks) whose X-Forwarded-For and "
        "X-Forwarded-Proto are trusted; empty trusts none.",
    )
    jwt_max_lifetime_seconds: int = Field(
        default=86_400,
        ge=60,
        description="Longest token lifetime accepted (exp - iat, and exp - now), seconds.",
    )
    retention_cron: str = Field(
        default="17 * * * *", description="When the retention sweep runs (cron)."
    )
    rollup_cron: str = Field(
        default="* * * * *", description="When stale report rollup months are rebuilt (cron)."
    )
    worker_in_process: bool = True
    api_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="API processes under `serve` (PIVOTAL_API_WORKERS; --workers overrides).",
    )
    worker_concurrency: int = Field(default=2, ge=1, le=64)
    db_pool_size: int = Field(default=10, ge=1)
    log_level: str = "INFO"

    @field_validator("database_url")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.env != "production":
            return self
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(
                f"PIVOTAL_JWT_SECRET must be set to at least {MIN_SECRET_BYTES} bytes "
                "when PIVOTAL_ENV=production"
            )
        if self.database_url is None:
            raise ValueError("PIVOTAL_DATABASE_URL must be set when PIVOTAL_ENV=production")
        return self

    @property
    def exports_path(self) -> Path:
        return self.export_dir or self.data_dir / "exports"

    def resolved_jwt_secret(self) -> str:
        """The HS256 secret: configured, or (dev only) generated once and kept in data_dir."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        secret_file = self.data_dir / "jwt-secret"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:  # O_EXCL: two processes starting together agree on one secret
            fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        return secret_file.read_text().strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
