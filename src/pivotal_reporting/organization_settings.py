"""An organization's settings as the reports and exports use them, read and validated once.

``timezone`` and ``base_currency`` are columns of ``organizations``; the export retention
is the ``exportRetentionDays`` key of its JSON ``settings``, which an admin edits, so a bad
value falls back to the default (and is logged) instead of failing exports or sweeps.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

RETENTION_SETTING = "exportRetentionDays"
DEFAULT_RETENTION_DAYS = 30
MIN_RETENTION_DAYS = 1
MAX_RETENTION_DAYS = 3650

_SETTINGS = text(
    "SELECT timezone, base_currency, settings -> 'exportRetentionDays' AS raw_retention "
    "FROM organizations WHERE id = :org"
)
_RETENTION_BY_ORGANIZATION = text(
    "SELECT id, settings -> 'exportRetentionDays' AS raw FROM organizations"
)


@dataclass(frozen=True)
class OrganizationSettings:
    timezone: str  # IANA name: the reports' local calendar
    base_currency: str  # ISO 4217 code
    retention_days: int  # days an export file is kept after it completed


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


async def read_organization_settings(
    session: AsyncSession, organization_id: str
) -> OrganizationSettings:
    """The settings of ``organization_id`` (which must exist and be visible to ``session``)."""
    row = (await session.execute(_SETTINGS, {"org": organization_id})).one()
    days = retention_days(row.raw_retention, organization_id)
    return OrganizationSettings(row.timezone, row.base_currency.strip(), days)


async def retention_days_by_organization(
    session: AsyncSession, organization_ids: Collection[str] | None = None
) -> list[tuple[str, int]]:
    """``(organization id, retention days)`` of every organization the session can see
    (a system session sees them all), or only of those in ``organization_ids``."""
    return [
        (row.id, retention_days(row.raw, row.id))
        for row in await session.execute(_RETENTION_BY_ORGANIZATION)
        if organization_ids is None or row.id in organization_ids
    ]
