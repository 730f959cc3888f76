"""The cap on concurrently running exports per organization (429 on POST when reached)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.errors import TooManyRequests

# Serialise the check-then-insert of one organization for the rest of the transaction,
# so two simultaneous requests cannot both see "one slot left".
_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended('export_capacity:' || :org, 0))")
_RUNNING = text(
    "SELECT count(*) FROM export_jobs "
    "WHERE organization_id = :org AND status IN ('pending', 'processing')"
)

RETRY_AFTER_SECONDS = 30


async def count_running_exports(session: AsyncSession, organization_id: str) -> int:
    """Export jobs of ``organization_id`` that are queued or running."""
    count: int = (await session.execute(_RUNNING, {"org": organization_id})).scalar_one()
    return count


async def ensure_export_capacity(session: AsyncSession, organization_id: str, limit: int) -> None:
    """Raise ``TooManyRequests`` when ``organization_id`` already has ``limit`` running exports.

    Call it in the transaction that inserts the new job: the advisory lock it takes is
    held until that transaction ends.
    """
    await session.execute(_LOCK, {"org": organization_id})
    running = await count_running_exports(session, organization_id)
    if running >= limit:
        raise TooManyRequests(
            f"Your organization already has {running} exports queued or running (limit {limit}); "
            "wait for one to finish.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
