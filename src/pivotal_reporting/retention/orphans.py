"""Files in storage that no job row points at (a crashed publish, a superseded attempt)."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.retention import repository as repo
from pivotal_reporting.storage import ExportStorage

log = logging.getLogger(__name__)

LOOKUP_CHUNK = 1000


def _modified_at(storage: ExportStorage, key: str) -> float | None:
    """The file's modification time (local storage), ``None`` if it is already gone."""
    path_of = getattr(storage, "path", None)
    if not callable(path_of):
        return 0.0  # a backend without times: treat every unreferenced file as old
    try:
        path: Path = path_of(key)
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


async def find_orphans(
    session: AsyncSession, storage: ExportStorage, older_than: datetime
) -> dict[str, list[str]]:
    """Unreferenced keys last written before ``older_than``, grouped by first key segment.

    Younger files are left alone: the runner renames a file into place just before its
    row commits, so a brand-new file may not be referenced yet.
    """
    threshold = older_than.timestamp()
    candidates = []
    for key in storage.keys():  # noqa: SIM118 - a storage method, not a dict
        modified = _modified_at(storage, key)
        if modified is not None and modified < threshold:
            candidates.append(key)
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
