"""What a load produced: rows per table for each demo organization."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

COUNTED_TABLES = (
    "users",
    "roles",
    "customers",
    "projects",
    "quotes",
    "invoices",
    "payments",
    "time_entries",
)


@dataclass(frozen=True)
class OrgCounts:
    organization_id: str
    name: str
    counts: tuple[tuple[str, int], ...]  # (table, rows) in COUNTED_TABLES order

    def count(self, table: str) -> int:
        return dict(self.counts)[table]


@dataclass(frozen=True)
class DemoSummary:
    """Rows per table for each demo organization, printed as a table."""

    seed: int
    scale: int
    organizations: tuple[OrgCounts, ...]

    def org(self, organization_id: str) -> OrgCounts:
        return next(o for o in self.organizations if o.organization_id == organization_id)

    def __str__(self) -> str:
        width = max(len(o.organization_id) for o in self.organizations)
        header = f"{'organization':<{width}}" + "".join(f" {t:>12}" for t in COUNTED_TABLES)
        lines = [f"demo data (seed {self.seed}, scale {self.scale:,}):", header]
        for org in self.organizations:
            cells = "".join(f" {n:>12,}" for _, n in org.counts)
            lines.append(f"{org.organization_id:<{width}}{cells}  {org.name}")
        return "\n".join(lines)


def count_rows(
    conn: psycopg.Connection[Any], organization_ids: Sequence[str], *, seed: int, scale: int
) -> DemoSummary:
    """Count each organization's rows (the caller's transaction must see every tenant)."""
    selects = ", ".join(
        f"(SELECT count(*) FROM {t} WHERE organization_id = o.id)"  # noqa: S608 -- reviewed: constants only, values are bound
        for t in COUNTED_TABLES
    )
    result = []
    for organization_id in organization_ids:
        row = conn.execute(
            f"SELECT o.name, {selects} FROM organizations AS o WHERE o.id = %s",  # noqa: S608 -- reviewed: constants only, values are bound
            (organization_id,),
        ).fetchone()
        if row is None:
            raise RuntimeError(f"demo organization {organization_id} is missing after loading")
        counts = tuple(zip(COUNTED_TABLES, (int(n) for n in row[1:]), strict=True))
        result.append(OrgCounts(organization_id, str(row[0]), counts))
    return DemoSummary(seed=seed, scale=scale, organizations=tuple(result))
