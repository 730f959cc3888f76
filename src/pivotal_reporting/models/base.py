"""Declarative base, naming convention and shared column helpers."""

from __future__ import annotations

import secrets
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from sqlalchemy import (
    CHAR,
    DateTime,
    ForeignKey,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Money = Annotated[Decimal, mapped_column(Numeric(15, 2))]
Currency = Annotated[str, mapped_column(CHAR(3))]
Timestamp = Annotated[datetime, mapped_column(DateTime(timezone=True))]
Json = Annotated[dict[str, Any], mapped_column(JSONB, server_default=text("'{}'::jsonb"))]


def new_id(prefix: str) -> str:
    """A random, unguessable id such as ``job_3q9...``."""
    return f"{prefix}_{secrets.token_urlsafe(16)}"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def created_at_column() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def updated_at_column() -> Mapped[datetime]:
    return mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


def organization_fk() -> Mapped[str]:
    """The tenant column every business table carries, indexed first."""
    return mapped_column(
        Text, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False, index=True
    )


def tenant_pk() -> PrimaryKeyConstraint:
    """The primary key of a tenant table keyed by its own ``id``: ``(organization_id, id)``.

    The organization comes first, so the key holds the distribution column of a sharded
    PostgreSQL (docs/scaling.md) and its index serves the composite foreign keys
    ``(organization_id, <x>_id)``. The ORM identity is ``(organization_id, id)`` too:
    ``session.get(Model, {"organization_id": org, "id": id})``.
    """
    return PrimaryKeyConstraint("organization_id", "id")


def status_check(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


CURRENCY_CHECK = "currency ~ '^[A-Z]{3}$'"

__all__ = [
    "CHAR",
    "CURRENCY_CHECK",
    "Base",
    "Currency",
    "Json",
    "Money",
    "String",
    "Timestamp",
    "created_at_column",
    "new_id",
    "organization_fk",
    "status_check",
    "tenant_pk",
    "updated_at_column",
]
