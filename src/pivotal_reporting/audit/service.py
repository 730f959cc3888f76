"""Appending to an organization's audit chain, inside the caller's transaction."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.audit.chain import GENESIS_HASH, AuditEntry, hash_payload
from pivotal_reporting.audit.repository import AuditFilters, Order, list_audit_logs
from pivotal_reporting.audit.schemas import (
    AuditLogPage,
    AuditLogRead,
    decode_cursor,
    encode_cursor,
)

# Upsert-and-lock the chain head in one statement: DO UPDATE takes the row lock, so
# concurrent appends of one organization queue here instead of forking the chain.
_LOCK_HEAD = text(
    """
    INSERT INTO audit_chain_heads (organization_id, seq, last_hash)
    VALUES (:org, 0, :genesis)
    ON CONFLICT (organization_id) DO UPDATE SET seq = audit_chain_heads.seq
    RETURNING seq, last_hash
    """
)
_APPEND = text(
    """
    WITH appended AS (
        INSERT INTO audit_logs (organization_id, user_id, action, resource, resource_id, details,
                                created_at, seq, payload, prev_hash, hash)
        VALUES (:org, :user_id, :action, :resource, :resource_id, CAST(:details AS jsonb),
                :created_at, :seq, :payload, :prev_hash, :hash)
        RETURNING seq, hash
    )
    UPDATE audit_chain_heads h SET seq = a.seq, last_hash = a.hash
    FROM appended a WHERE h.organization_id = :org
    """
)


def _json_safe(details: dict[str, Any]) -> dict[str, Any]:
    # Round-trip so that what is hashed is exactly what jsonb will hold (e.g. Decimal → str).
    parsed: dict[str, Any] = json.loads(json.dumps(details, default=str))
    return parsed


async def record_event(
    session: AsyncSession,
    *,
    organization_id: str,
    user_id: str | None,
    action: str,
    resource: str,
    resource_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one event to ``organization_id``'s chain in the current transaction."""
    head = (
        await session.execute(_LOCK_HEAD, {"org": organization_id, "genesis": GENESIS_HASH})
    ).one()
    entry = AuditEntry(
        organization_id=organization_id,
        seq=head.seq + 1,
        user_id=user_id,
        action=action,
        resource=resource,
        resource_id=resource_id,
        details=_json_safe(details or {}),
        created_at=datetime.now(UTC),
        prev_hash=head.last_hash,
    )
    payload = entry.canonical_payload()
    await session.execute(
        _APPEND,
        {
            "org": organization_id,
            "user_id": user_id,
            "action": action,
            "resource": resource,
            "resource_id": resource_id,
            "details": json.dumps(entry.details),
            "created_at": entry.created_at,
            "seq": entry.seq,
            "payload": payload,
            "prev_hash": entry.prev_hash,
            "hash": hash_payload(payload),
        },
    )
    return entry


async def read_audit_page(
    session: AsyncSession,
    organization_id: str,
    filters: AuditFilters,
    *,
    cursor: str | None,
    order: Order,
    limit: int,
) -> AuditLogPage:
    """One page of the organization's audit log and the cursor of the next one."""
    after = decode_cursor(cursor, order) if cursor else None
    rows = await list_audit_logs(
        session, organization_id, filters, after_seq=after, limit=limit + 1, order=order
    )
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].seq, order) if len(rows) > limit else None
    return AuditLogPage(data=[AuditLogRead.from_row(row) for row in page], next_cursor=next_cursor)
