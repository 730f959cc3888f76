"""Writing real chained audit events from tests (through the production writer)."""

from __future__ import annotations

import asyncio
from typing import Any

from pivotal_reporting.audit.service import record_event
from pivotal_reporting.db import Database


def record_events(database_url: str, organization_id: str, events: list[dict[str, Any]]) -> None:
    """Append ``events`` (keyword arguments of ``record_event``) to the org's chain."""

    async def run() -> None:
        database = Database.connect(database_url, pool_size=1)
        try:
            async with database.tenant_session(organization_id) as session:
                for event in events:
                    await record_event(session, organization_id=organization_id, **event)
        finally:
            await database.dispose()

    asyncio.run(run())
