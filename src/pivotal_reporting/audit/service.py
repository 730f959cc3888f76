"""Appending to an organization's audit chain, inside the caller's transaction."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from psycopg import sql
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.audit.chain import (
    GENESIS_HASH,
    AuditEntry,
    hash_payload,
    payload_around_head,
)
from pivotal_reporting.audit.repository import AuditFilters, Order, list_audit_logs
from pivotal_reporting.audit.schemas import (
    AuditLogPage,
    AuditLogRead,
    decode_cursor,
    encode_cursor,
)
from pivotal_reporting.db import Database
from pivotal_reporting.rls import TENANT_ROLE

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


# append_event's transaction, sent whole in one message: the head is locked, the event
# appended with its payload completed by the head's seq and hash and hashed by
# PostgreSQL (sha256 of its UTF-8 bytes, as hash_payload), and the head moved on. An
# organization without a head yet updates nothing (append_event then takes
# record_event's upsert).
_APPEND_AT_HEAD = """
BEGIN;
SELECT set_config('role', {role}, true), set_config('app.organization_id', {org}, true);
WITH head AS (
    SELECT seq + 1 AS seq, last_hash FROM audit_chain_heads
    WHERE organization_id = {org} FOR UPDATE
), event AS (
    SELECT seq, last_hash AS prev_hash,
           {before} || last_hash || {middle} || seq::text || {after} AS payload
    FROM head
), appended AS (
    INSERT INTO audit_logs (organization_id, user_id, action, resource, resource_id, details,
                            created_at, seq, payload, prev_hash, hash)
    SELECT {org}, {user_id}, {action}, {resource}, {resource_id}, CAST({details} AS jsonb),
           {created_at}, seq, payload, prev_hash,
           encode(sha256(convert_to(payload, 'UTF8')), 'hex')
    FROM event
    RETURNING seq, hash
)
UPDATE audit_chain_heads h SET seq = a.seq, last_hash = a.hash
FROM appended a WHERE h.organization_id = {org}
RETURNING h.seq;
COMMIT;
"""


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


async def append_event(
    database: Database,
    *,
    organization_id: str,
    user_id: str | None,
    action: str,
    resource: str,
    resource_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one event in a transaction of its own, committed when this returns.

    Same chain and bytes as ``record_event``, but the whole transaction reaches the
    server in one message: the chain head's lock is held only while PostgreSQL runs it,
    never while this process waits for its event loop. Under load, appends to one
    organization's chain (one per summary served) would otherwise queue behind
    whichever holder's process is busy.
    """
    safe = _json_safe(details or {})
    created_at = datetime.now(UTC)
    before, middle, after = payload_around_head(
        organization_id=organization_id,
        user_id=user_id,
        action=action,
        resource=resource,
        resource_id=resource_id,
        details=safe,
        created_at=created_at,
    )
    values = {
        "role": TENANT_ROLE,
        "org": organization_id,
        "before": before,
        "middle": middle,
        "after": after,
        "user_id": user_id,
        "action": action,
        "resource": resource,
        "resource_id": resource_id,
        "details": json.dumps(safe),
        "created_at": created_at,
    }
    statement = sql.SQL(_APPEND_AT_HEAD).format(
        **{name: sql.Literal(value) for name, value in values.items()}
    )
    results = await database.send_transaction(statement)
    appended = any(result.tag == "UPDATE" and result.rowcount == 1 for result in results)
    if not appended:  # the organization's first event: create its head
        async with database.tenant_session(organization_id) as session:
            await record_event(
                session,
                organization_id=organization_id,
                user_id=user_id,
                action=action,
                resource=resource,
                resource_id=resource_id,
                details=details,
            )


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
