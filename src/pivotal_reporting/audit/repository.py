"""Reading the audit log: filtered keyset pages for the API, seq-ordered batches for export."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncSession

Order = Literal["asc", "desc"]

_COLUMNS = (
    "id, organization_id, seq, user_id, action, resource, resource_id, details, created_at, "
    "payload, prev_hash, hash"
)


@dataclass(frozen=True)
class AuditFilters:
    """Optional filters; the window is half-open ``[from_at, to_at)``."""

    action: str | None = None
    user_id: str | None = None
    from_at: datetime | None = None
    to_at: datetime | None = None


def _where(organization_id: str, filters: AuditFilters) -> tuple[list[str], dict[str, Any]]:
    clauses = ["organization_id = :org"]
    params: dict[str, Any] = {"org": organization_id}
    for column, key, operator, value in (
        ("action", "action", "=", filters.action),
        ("user_id", "user_id", "=", filters.user_id),
        ("created_at", "from_at", ">=", filters.from_at),
        ("created_at", "to_at", "<", filters.to_at),
    ):
        if value is not None:
            clauses.append(f"{column} {operator} :{key}")
            params[key] = value
    return clauses, params


async def list_audit_logs(
    session: AsyncSession,
    organization_id: str,
    filters: AuditFilters,
    *,
    after_seq: int | None,
    limit: int,
    order: Order = "desc",
) -> list[Row[Any]]:
    """One page of ``organization_id``'s events in ``seq`` order, after ``after_seq``."""
    clauses, params = _where(organization_id, filters)
    if after_seq is not None:
        clauses.append("seq < :after" if order == "desc" else "seq > :after")
        params["after"] = after_seq
    direction = "DESC" if order == "desc" else "ASC"
    sql = text(
        f"SELECT {_COLUMNS} FROM audit_logs WHERE {' AND '.join(clauses)} "  # noqa: S608 -- reviewed: constants only, values are bound
        f"ORDER BY seq {direction} LIMIT :limit"
    )
    return list((await session.execute(sql, params | {"limit": limit})).all())


async def iter_audit_rows(
    session: AsyncSession, organization_id: str, filters: AuditFilters, *, batch: int = 2000
) -> AsyncIterator[Row[Any]]:
    """Every matching event in ascending ``seq`` order, read in keyset batches."""
    after: int | None = None
    while True:
        rows = await list_audit_logs(
            session, organization_id, filters, after_seq=after, limit=batch, order="asc"
        )
        for row in rows:
            yield row
        if len(rows) < batch:
            return
        after = rows[-1].seq
