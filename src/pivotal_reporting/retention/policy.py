"""The retention rules: how long files and job rows are kept (pure, no I/O).

How many days an organization keeps its files is its ``exportRetentionDays`` setting,
read and validated by :mod:`pivotal_reporting.organization_settings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# A terminal job row stays this long after it ended (or after its file expired).
ROW_GRACE = timedelta(days=7)
# An unreferenced file younger than this may be an export being published right now.
ORPHAN_GRACE = timedelta(hours=1)
# A partial file or multipart upload this old belongs to a worker that died long ago.
STALE_PARTIAL_AGE = timedelta(days=1)


@dataclass(frozen=True)
class Cutoffs:
    """Instants a sweep compares against (all UTC)."""

    now: datetime
    file_cutoff: datetime  # files of jobs completed before this expire
    row_cutoff: datetime  # terminal rows that ended before this go

    @classmethod
    def at(cls, now: datetime, days: int) -> Cutoffs:
        return cls(now=now, file_cutoff=now - timedelta(days=days), row_cutoff=now - ROW_GRACE)
