"""One typed Settings object, read from ``PIVOTAL_*`` environment variables.

Outside ``dev`` the settings refuse unsafe defaults: no generated JWT secret, no
embedded database.
"""

from __future__ import annotations

import os
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_SECRET_BYTES = 32
_S3_URL = re.compile(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[A-Za-z0-9_\-.]+)*/?$")


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
    # OpenID Connect (docs/oidc.md). With an issuer set, bearer tokens are verified against
    # the provider's keys only (RS256/ES256); our own HS256 tokens are refused.
    oidc_issuer: str | None = Field(
        default=None,
        description="The provider's issuer URL; discovery is read from "
        "<issuer>/.well-known/openid-configuration. Unset: HS256 tokens (development).",
    )
    oidc_audience: str | None = Field(
        default=None, description="The audience ('aud') tokens must carry; required with an issuer."
    )
    oidc_org_claim: str = Field(
        default="org",
        description="Claim holding the organization id (dots descend: 'tenant.id').",
    )
    oidc_roles_claim: str = Field(
        default="roles",
        description="Claim holding the provider roles, a list of strings "
        "(dots descend: 'realm_access.roles').",
    )
    oidc_role_permissions: dict[str, list[str]] = Field(
        default_factory=dict,
        description='JSON mapping of provider roles to permissions, e.g. {"finance": '
        '["reports.view_reports"]}; a role not listed grants nothing (and is logged).',
    )
    oidc_jwks_cache_seconds: int = Field(
        default=300, ge=1, description="How long the provider's keys are used before refetching."
    )
    oidc_jwks_min_refresh_seconds: float = Field(
        default=10.0,
        ge=0,
        description="Least time between two refetches caused by tokens with an unknown key id.",
    )
    oidc_http_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Timeout of each request to the provider."
    )
    oidc_client_id: str | None = Field(
        default=None,
        description="The dashboard's client id at the provider (default: the audience).",
    )
    oidc_client_secret: SecretStr | None = Field(
        default=None,
        description="The dashboard's client secret (unset: a public client, PKCE only).",
    )
    oidc_scopes: str = Field(
        default="openid email profile", description="Scopes the dashboard sign-in asks for."
    )
    oidc_redirect_url: str | None = Field(
        default=None,
        description="The dashboard's callback URL registered at the provider "
        "(default: <this request's origin><public_base_path>/oidc/callback).",
    )
    # Export storage beyond one machine (docs/storage-and-backups.md). Endpoint, region and
    # credentials of S3 come the standard AWS way (AWS_ENDPOINT_URL, AWS_REGION, ...).
    export_storage_url: str | None = Field(
        default=None,
        description="s3://bucket/prefix stores export files as objects; empty: export_dir.",
    )
    export_download_mode: Literal["stream", "redirect"] = Field(
        default="stream",
        description="redirect: 307 to a presigned URL of the object (S3 only); stream: via the API.",
    )
    export_download_url_seconds: int = Field(
        default=300, ge=1, le=7 * 24 * 3600, description="Lifetime of a presigned download URL."
    )
    export_upload_part_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=5 * 1024 * 1024,
        le=5 * 1024 * 1024 * 1024,
        description="Size of each multipart upload part (S3's minimum is 5 MiB).",
    )
    pg_bin_dir: Path | None = Field(
        default=None,
        description="Where backup/restore look first for pg_dump and pg_restore.",
    )
    # The read replica (docs/read-replica.md): summaries and export COPY read there.
    read_database_url: str | None = Field(
        default=None,
        description="A physical streaming replica of the primary (one server, not a pool): "
        "summaries and export COPY read there; empty reads the primary.",
    )
    read_max_lag_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A replica further behind than this (seconds of replay lag) is not read.",
    )
    read_fallback: Literal["primary", "unavailable"] = Field(
        default="primary",
        description="When the replica is down or lags: read the primary, or answer 503 "
        "(exports retry later).",
    )

    @field_validator("database_url", "read_database_url")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("oidc_issuer", "oidc_audience")
    @classmethod
    def _blank_oidc_is_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _oidc_needs_audience(self) -> Settings:
        if self.oidc_issuer and not self.oidc_audience:
            raise ValueError(
                "PIVOTAL_OIDC_AUDIENCE must be set when PIVOTAL_OIDC_ISSUER is set "
                "(a token issued for another application must not be accepted)"
            )
        return self

    @field_validator("export_storage_url")
    @classmethod
    def _s3_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not _S3_URL.match(value):
            raise ValueError(
                "PIVOTAL_EXPORT_STORAGE_URL must look like s3://bucket or s3://bucket/prefix "
                "(bucket: 3-63 lowercase letters, digits, dots, hyphens; prefix: letters, "
                "digits, _ - . /)"
            )
        return value

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
