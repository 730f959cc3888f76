"""The retention rules: how long files and job rows are kept (pure, no I/O)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

log = logging.getLogger(__name__)

RETENTION_SETTING = "exportRetentionDays"
DEFAULT_RETENTION_DAYS = 30
MIN_RETENTION_DAYS = 1
MAX_RETENTION_DAYS = 3650
# A terminal job row stays this long after it ended (or after its file expired).
ROW_GRACE = timedelta(days=7)
# An unreferenced file younger than this may be an export being published right now.
ORPHAN_GRACE = timedelta(hours=1)
# A partial file or multipart upload this old belongs to a worker that died long ago.
STALE_PARTIAL_AGE = timedelta(days=1)


def retention_days(raw: Any, organization_id: str) -> int:
    """``settings.exportRetentionDays`` when it is a whole number of days in 1-3650.

    Anything else (missing, text, a fraction, out of range) means the default of 30 days;
    a present but invalid value is logged so that the organization's admin can fix it.
    """
    if raw is None:
        return DEFAULT_RETENTION_DAYS
    valid = isinstance(raw, int) and not isinstance(raw, bool)
    if valid and MIN_RETENTION_DAYS <= raw <= MAX_RETENTION_DAYS:
        return int(raw)
    log.warning(
        "invalid exportRetentionDays; using the default",
        extra={
            "fields": {
                "event": "invalid_retention_setting",
                "organization_id": organization_id,
                "default_days": DEFAULT_RETENTION_DAYS,
                "allowed": f"{MIN_RETENTION_DAYS}-{MAX_RETENTION_DAYS}",
            }
        },
    )
    return DEFAULT_RETENTION_DAYS


@dataclass(frozen=True)
class Cutoffs:
    """Instants a sweep compares against (all UTC)."""

    now: datetime
    file_cutoff: datetime  # files of jobs completed before this expire
    row_cutoff: datetime  # terminal rows that ended before this go

    @classmethod
    def at(cls, now: datetime, days: int) -> Cutoffs:
        return cls(now=now, file_cutoff=now - timedelta(days=days), row_cutoff=now - ROW_GRACE)
