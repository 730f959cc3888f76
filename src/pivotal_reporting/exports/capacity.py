"""The cap on concurrently running exports per organization (429 on POST when reached)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.errors import TooManyRequests
from pivotal_reporting.exports import repository as repo

RETRY_AFTER_SECONDS = 30


async def ensure_export_capacity(session: AsyncSession, organization_id: str, limit: int) -> None:
    """Raise ``TooManyRequests`` when ``organization_id`` already has ``limit`` running exports.

    Call it in the transaction that inserts the new job: the advisory lock it takes is
    held until that transaction ends.
    """
    await repo.lock_export_capacity(session, organization_id)
    running = await repo.count_running_exports(session, organization_id)
    if running >= limit:
        raise TooManyRequests(
            f"Your organization already has {running} exports queued or running (limit {limit}); "
            "wait for one to finish.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
