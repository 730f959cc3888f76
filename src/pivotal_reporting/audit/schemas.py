"""Audit log responses (camelCase on the wire) and the opaque page cursor."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from pivotal_reporting.audit.repository import Order
from pivotal_reporting.errors import InvalidInput
from pivotal_reporting.schema_base import CamelModel


class AuditLogRead(CamelModel):
    id: int
    seq: int
    organization_id: str
    user_id: str | None
    action: str
    resource: str
    resource_id: str | None
    details: dict[str, Any]
    created_at: datetime
    prev_hash: str
    hash: str

    @classmethod
    def from_row(cls, row: Row[Any]) -> AuditLogRead:
        return cls(
            id=row.id,
            seq=row.seq,
            organization_id=row.organization_id,
            user_id=row.user_id,
            action=row.action,
            resource=row.resource,
            resource_id=row.resource_id,
            details=row.details,
            created_at=row.created_at,
            prev_hash=row.prev_hash,
            hash=row.hash,
        )


class AuditLogPage(CamelModel):
    data: list[AuditLogRead]
    next_cursor: str | None


def encode_cursor(seq: int, order: Order) -> str:
    """An opaque token for "the page after ``seq``" (clients must not build it)."""
    return base64.urlsafe_b64encode(f"v1:{order}:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, order: Order) -> int:
    """The ``seq`` a cursor continues after; 422 if it is malformed or of another order."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, cursor_order, seq = raw.split(":")
        if version != "v1" or cursor_order != order:
            raise ValueError(raw)
        return int(seq)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput(
            "Invalid cursor: pass back the nextCursor of the previous page with the same order.",
            errors=[{"field": "query.cursor", "message": "malformed cursor"}],
        ) from exc
