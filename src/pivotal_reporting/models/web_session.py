"""Dashboard sign-in (migration 0008): browser sessions and one-time sign-in links.

Both are tenant tables (``organization_id`` + row-level security): the cookie and the
link carry the organization's id in clear next to a random secret, so a lookup runs in
that organization's tenant transaction like every other read. Only SHA-256 digests of
the secrets are stored.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKeyConstraint, Index, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from pivotal_reporting.models.base import Base, created_at_column, tenant_pk


class WebSession(Base):
    __tablename__ = "web_sessions"
    __table_args__ = (
        ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            ondelete="CASCADE",
        ),
        Index("ix_web_sessions_organization_id_user_id", "organization_id", "user_id"),
        Index("ix_web_sessions_expires_at", "expires_at"),
        tenant_pk(),
    )

    id: Mapped[str] = mapped_column(Text)  # sha256 hex of the secret
    organization_id: Mapped[str] = mapped_column(Text, nullable=False)
    user_id: Mapped[str] = mapped_column(Text, nullable=False)
    csrf_hash: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The OpenID Connect roles the session was opened with (migration 0009); NULL: our own.
    provider_roles: Mapped[list[str] | None] = mapped_column(ARRAY(Text))


class WebSigninLink(Base):
    __tablename__ = "web_signin_links"
    __table_args__ = (
        ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            ondelete="CASCADE",
        ),
        Index("ix_web_signin_links_organization_id_user_id", "organization_id", "user_id"),
        Index("ix_web_signin_links_expires_at", "expires_at"),
        tenant_pk(),
    )

    id: Mapped[str] = mapped_column(Text)  # sha256 hex of the secret
    organization_id: Mapped[str] = mapped_column(Text, nullable=False)
    user_id: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    session_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
