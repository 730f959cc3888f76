"""Recomputing an organization's chain to find the first row that was tampered with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.audit.chain import GENESIS_HASH, hash_payload

_ROWS = text(
    """
    SELECT id, organization_id, seq, user_id, action, resource, resource_id, details,
           created_at, payload, prev_hash, hash
    FROM audit_logs WHERE organization_id = :org AND seq > :after
    ORDER BY seq LIMIT :batch
    """
)

_HEAD = text("SELECT seq, last_hash FROM audit_chain_heads WHERE organization_id = :org")


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    audit_log_id: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    organization_id: str
    rows_checked: int
    first_break: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


def _row_problem(row: Row[Any], expected_seq: int, expected_prev: str) -> str | None:
    seq, payload = row.seq, row.payload
    if seq != expected_seq:
        return f"sequence gap: expected seq {expected_seq}, found {seq}"
    if row.prev_hash != expected_prev:
        return "prev_hash does not match the previous row's hash"
    if hash_payload(payload) != row.hash:
        return "hash does not match the stored payload"
    try:
        content = json.loads(payload)
    except ValueError:
        return "payload is not valid JSON"
    columns = {
        "organization_id": row.organization_id,
        "seq": seq,
        "user_id": row.user_id,
        "action": row.action,
        "resource": row.resource,
        "resource_id": row.resource_id,
        "details": row.details,
        "prev_hash": row.prev_hash,
    }
    for key, value in columns.items():
        if content.get(key) != value:
            return f"column {key} differs from the hashed payload"
    if datetime.fromisoformat(content.get("created_at", "")) != row.created_at:
        return "column created_at differs from the hashed payload"
    return None


async def verify_chain(
    session: AsyncSession, organization_id: str, *, batch: int = 5000
) -> ChainReport:
    """Walk the chain in ``seq`` order, in batches; stop at the first broken row."""
    checked, expected_prev, last_seq = 0, GENESIS_HASH, 0
    while True:
        rows = (
            await session.execute(
                _ROWS, {"org": organization_id, "after": last_seq, "batch": batch}
            )
        ).all()
        if not rows:
            head = (await session.execute(_HEAD, {"org": organization_id})).one_or_none()
            head_seq, head_hash = (head.seq, head.last_hash) if head else (0, GENESIS_HASH)
            if (head_seq, head_hash) != (last_seq, expected_prev):
                reason = f"chain head is at seq {head_seq} but the log ends at seq {last_seq}"
                return ChainReport(organization_id, checked, ChainBreak(last_seq + 1, 0, reason))
            return ChainReport(organization_id, checked, None)
        for row in rows:
            problem = _row_problem(row, last_seq + 1, expected_prev)
            if problem is not None:
                return ChainReport(
                    organization_id, checked, ChainBreak(last_seq + 1, row.id, problem)
                )
            checked += 1
            expected_prev, last_seq = row.hash, row.seq
