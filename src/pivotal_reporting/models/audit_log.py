"""Append-only, hash-chained audit log and its per-organization chain head."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from pivotal_reporting.models.base import Base, organization_fk, tenant_pk


class AuditLog(Base):
    __tablename__ = "audit_logs"
    __table_args__ = (
        tenant_pk(),
        UniqueConstraint("organization_id", "seq"),
        Index("ix_audit_logs_organization_id_created_at", "organization_id", "created_at"),
        Index("ix_audit_logs_organization_id_action", "organization_id", "action"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity())
    organization_id: Mapped[str] = organization_fk()
    user_id: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    resource: Mapped[str] = mapped_column(Text)
    resource_id: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seq: Mapped[int] = mapped_column(BigInteger)
    # The canonical JSON that was hashed, stored verbatim (jsonb output is not stable).
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """One row per organization, locked to serialise appends to its chain."""

    __tablename__ = "audit_chain_heads"

    organization_id: Mapped[str] = mapped_column(
        Text, ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    last_hash: Mapped[str] = mapped_column(String(64))
