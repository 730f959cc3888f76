"""Files in storage that no job row points at (a crashed publish, a superseded attempt).

A file's age is its modification time (local) or the object's LastModified (S3).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.retention import repository as repo
from pivotal_reporting.storage import ExportStorage

log = logging.getLogger(__name__)

LOOKUP_CHUNK = 1000


async def find_orphans(
    session: AsyncSession, storage: ExportStorage, older_than: datetime
) -> dict[str, list[str]]:
    """Unreferenced keys last written before ``older_than``, grouped by first key segment.

    Younger files are left alone: the runner renames a file into place just before its
    row commits, so a brand-new file may not be referenced yet.
    """
    # Listing may page through a bucket over the network: off the event loop.
    listing = await asyncio.to_thread(lambda: list(storage.listing()))
    candidates = [key for key, modified in listing if modified < older_than]
    orphans: dict[str, list[str]] = defaultdict(list)
    for start in range(0, len(candidates), LOOKUP_CHUNK):
        chunk = candidates[start : start + LOOKUP_CHUNK]
        referenced = await repo.referenced_keys(session, chunk)
        for key in chunk:
            if key not in referenced:
                orphans[key.split("/", 1)[0]].append(key)
    return dict(orphans)


def delete_orphans(storage: ExportStorage, keys: list[str]) -> None:
    for key in keys:
        if storage.delete(key):
            log.info("orphan export file deleted", extra={"fields": {"storage_key": key}})
