"""Organizations, users and role-based access control."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CHAR,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from pivotal_reporting.models.base import (
    Base,
    created_at_column,
    organization_fk,
    status_check,
    tenant_pk,
    updated_at_column,
)

USER_STATUSES = ("active", "disabled")


class Organization(Base):
    __tablename__ = "organizations"
    __table_args__ = (
        CheckConstraint("base_currency ~ '^[A-Z]{3}$'", name="base_currency_iso"),
        CheckConstraint("jsonb_typeof(settings) = 'object'", name="settings_object"),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    base_currency: Mapped[str] = mapped_column(CHAR(3), server_default=text("'USD'"))
    timezone: Mapped[str] = mapped_column(Text, server_default=text("'UTC'"))
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        tenant_pk(),
        UniqueConstraint("organization_id", "email"),
        CheckConstraint(status_check("status", USER_STATUSES), name="status"),
    )

    id: Mapped[str] = mapped_column(Text)
    organization_id: Mapped[str] = organization_fk()
    email: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default=text("'active'"))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class Permission(Base):
    """Global catalogue of permission names (not tenant data)."""

    __tablename__ = "permissions"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    description: Mapped[str] = mapped_column(Text, server_default=text("''"))


class Role(Base):
    __tablename__ = "roles"
    __table_args__ = (
        tenant_pk(),
        UniqueConstraint("organization_id", "name"),
    )

    id: Mapped[str] = mapped_column(Text)
    organization_id: Mapped[str] = organization_fk()
    name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()


class RolePermission(Base):
    __tablename__ = "role_permissions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["organization_id", "role_id"],
            ["roles.organization_id", "roles.id"],
            ondelete="CASCADE",
        ),
    )

    organization_id: Mapped[str] = mapped_column(
        Text, ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    role_id: Mapped[str] = mapped_column(Text, primary_key=True)
    permission_id: Mapped[str] = mapped_column(
        Text, ForeignKey("permissions.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class UserRole(Base):
    __tablename__ = "user_roles"
    __table_args__ = (
        ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["organization_id", "role_id"],
            ["roles.organization_id", "roles.id"],
            ondelete="CASCADE",
        ),
        Index("ix_user_roles_organization_id_role_id", "organization_id", "role_id"),
    )

    organization_id: Mapped[str] = mapped_column(
        Text, ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(Text, primary_key=True)
    role_id: Mapped[str] = mapped_column(Text, primary_key=True)
