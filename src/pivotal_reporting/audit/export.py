"""``audit export``: an organization's events as JSON lines an auditor can verify offline.

Each line carries the exact hashed ``payload`` with ``prev_hash``, ``hash`` and ``seq``:
``sha256(payload) == hash``, ``payload.prev_hash == prev_hash`` equals the previous
line's ``hash``, and ``seq`` has no gap. The first line's ``prev_hash`` anchors the
range to the event before it (the all-zero genesis hash when the range starts at seq 1).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Row

from pivotal_reporting.audit.repository import AuditFilters, iter_audit_rows
from pivotal_reporting.db import Database


def audit_line(row: Row[Any]) -> str:
    """One event as a compact JSON object (the chain fields verbatim)."""
    return json.dumps(
        {
            "seq": row.seq,
            "id": row.id,
            "organization_id": row.organization_id,
            "user_id": row.user_id,
            "action": row.action,
            "resource": row.resource,
            "resource_id": row.resource_id,
            "details": row.details,
            "created_at": row.created_at.isoformat(),
            "payload": row.payload,
            "prev_hash": row.prev_hash,
            "hash": row.hash,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


async def export_audit_log(
    database: Database, organization_id: str, filters: AuditFilters, out: TextIO
) -> int:
    """Write ``organization_id``'s events matching ``filters`` to ``out``; return the count."""
    written = 0
    async with database.tenant_session(organization_id) as session:
        async for row in iter_audit_rows(session, organization_id, filters):
            out.write(audit_line(row) + "\n")
            written += 1
    return written


def parse_aware(value: str | None, option: str) -> datetime | None:
    """An ISO-8601 date-time with an offset (``Z`` allowed); a naive one is refused."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{option}: not an ISO-8601 date-time: {value!r}") from exc
    if parsed.tzinfo is None:
        raise ValueError(f"{option}: give an offset, e.g. {value}Z or {value}+02:00")
    return parsed


async def export_to_path(
    url: str, organization_id: str, filters: AuditFilters, output: Path | None
) -> int:
    """Export to ``output`` (written atomically) or to standard output."""
    database = Database.connect(url, pool_size=1)
    try:
        if output is None:
            return await export_audit_log(database, organization_id, filters, sys.stdout)
        partial = output.with_name(f".{output.name}.partial")
        with partial.open("w", encoding="utf-8") as handle:
            count = await export_audit_log(database, organization_id, filters, handle)
        partial.replace(output)
        return count
    finally:
        await database.dispose()
