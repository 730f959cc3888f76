"""SQL of the retention sweep; every selection locks its batch with SKIP LOCKED.

Several workers (or a worker and a cron ``cleanup``) can sweep at once: each takes a
disjoint batch of rows, and rows another sweeper holds are simply left for the next run.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.retention.policy import Cutoffs

# Files to delete: completed jobs past their retention (the earlier of the expiry stamped
# at completion and the organization's current setting), and any file still attached to
# a failed or cancelled job that is due to go.
_FILES_DUE = """
    SELECT id, storage_key, status FROM export_jobs
    WHERE organization_id = :org AND storage_key IS NOT NULL AND file_deleted_at IS NULL
      AND ((status = 'completed' AND (expires_at <= :now OR completed_at <= :file_cutoff))
        OR (status IN ('failed', 'cancelled') AND COALESCE(ended_at, updated_at) <= :row_cutoff))
    ORDER BY completed_at NULLS LAST, id
"""
_MARK_FILES_DELETED = text(
    """
    UPDATE export_jobs
    SET file_deleted_at = :now, updated_at = :now, download_url = NULL,
        status = CASE WHEN status = 'completed' THEN 'expired' ELSE status END
    WHERE organization_id = :org AND id = ANY(:ids)
    RETURNING id, organization_id, user_id, report_type, format, status, attempts
    """
)
# Rows to delete: terminal, ended (and file gone) more than ROW_GRACE ago.
_ROWS_DUE = """
    SELECT id FROM export_jobs
    WHERE organization_id = :org AND status IN ('expired', 'failed', 'cancelled')
      AND (storage_key IS NULL OR file_deleted_at IS NOT NULL)
      AND GREATEST(COALESCE(ended_at, updated_at), COALESCE(file_deleted_at, '-infinity'))
          <= :row_cutoff
    ORDER BY ended_at NULLS FIRST, id
"""
_DELETE_ROWS = text(
    """
    DELETE FROM export_jobs WHERE organization_id = :org AND id = ANY(:ids)
    RETURNING id, organization_id, user_id, report_type, format, status, attempts
    """
)
_REFERENCED_KEYS = text("SELECT storage_key FROM export_jobs WHERE storage_key = ANY(:keys)")


def _params(organization_id: str, cutoffs: Cutoffs) -> dict[str, Any]:
    return {
        "org": organization_id,
        "now": cutoffs.now,
        "file_cutoff": cutoffs.file_cutoff,
        "row_cutoff": cutoffs.row_cutoff,
    }


def _batch(sql: str, limit: int | None) -> str:
    """Lock a batch for the sweep, or (dry run, ``limit=None``) just read every row."""
    return sql if limit is None else f"{sql} LIMIT :limit FOR UPDATE SKIP LOCKED"


async def files_due(
    session: AsyncSession, organization_id: str, cutoffs: Cutoffs, limit: int | None
) -> list[Row[Any]]:
    """``(id, storage_key, status)`` of jobs whose file must go now."""
    params = _params(organization_id, cutoffs) | {"limit": limit}
    return list((await session.execute(text(_batch(_FILES_DUE, limit)), params)).all())


async def mark_files_deleted(
    session: AsyncSession, organization_id: str, ids: list[str], cutoffs: Cutoffs
) -> list[Row[Any]]:
    """Record the deletions; completed jobs become ``expired`` (download answers 410)."""
    params = {"org": organization_id, "ids": ids, "now": cutoffs.now}
    return list((await session.execute(_MARK_FILES_DELETED, params)).all())


async def rows_due(
    session: AsyncSession, organization_id: str, cutoffs: Cutoffs, limit: int | None
) -> list[str]:
    params = _params(organization_id, cutoffs) | {"limit": limit}
    return list((await session.execute(text(_batch(_ROWS_DUE, limit)), params)).scalars())


async def delete_rows(
    session: AsyncSession, organization_id: str, ids: list[str]
) -> list[Row[Any]]:
    params = {"org": organization_id, "ids": ids}
    return list((await session.execute(_DELETE_ROWS, params)).all())


async def referenced_keys(session: AsyncSession, keys: list[str]) -> set[str]:
    """Which of ``keys`` some job row still points at, in any organization (system session)."""
    return set((await session.execute(_REFERENCED_KEYS, {"keys": keys})).scalars())
