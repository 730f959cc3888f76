"""Rollups: the lookup index also positions on ``key2``; quarters may be built

``ix_report_rollups_lookup`` was ``(organization_id, report_type, facet, grain, period,
bin)`` with every other column included. A summary filtered by, say, payment method
read the customer facet's groups of every method and dropped four in five after the
scan: at a million payments a year, 367,000 index entries for 98,000 groups.

The index becomes ``(organization_id, report_type, facet, grain, period, key2, bin)``,
the rest included as before. A facet keyed by what a filter compares in ``key2`` (the
``customers_by_*`` facets of the invoice and payment summaries) now finds only the
groups of that value, one index descent per period. Facets that leave ``key2`` open
read exactly as before: every entry of each period, ``bin`` checked in the index.

``rollup_periods`` may also hold local calendar quarters (``grain = 'quarter'``, the
period its first day): facets with one group per customer are also rolled up per
quarter, so a one-year window reads about half as many of their groups.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 01:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_report_rollups_lookup"
_LEADING = ["organization_id", "report_type", "facet", "grain", "period"]
_MEASURES = ["key1", "key3", "day1", "day2", "flag", "n", "total", "low", "high"]
_MEASURES += ["amount", "amount2"]


# The name migration 0007 gave it (its naming convention applied twice).
_GRAIN_CHECK = "ck_rollup_periods_ck_rollup_periods_grain"
_MONTH_OR_DAY = "grain = 'day' OR (grain = 'month' AND period = date_trunc('month', period)::date)"
_QUARTER = " OR (grain = 'quarter' AND period = date_trunc('quarter', period)::date)"


def _grain_check(condition: str) -> None:
    op.execute(f"ALTER TABLE rollup_periods DROP CONSTRAINT {_GRAIN_CHECK}")
    op.execute(f"ALTER TABLE rollup_periods ADD CONSTRAINT {_GRAIN_CHECK} CHECK ({condition})")


def upgrade() -> None:
    _grain_check(_MONTH_OR_DAY + _QUARTER)
    op.drop_index(_INDEX, table_name="report_rollups")
    op.create_index(
        _INDEX,
        "report_rollups",
        [*_LEADING, "key2", "bin"],
        postgresql_include=_MEASURES,
    )


def downgrade() -> None:
    # report_rollups forces row-level security: its rows are all visible in maintenance.
    op.execute("SELECT set_config('app.maintenance', 'on', true)")
    op.execute("DELETE FROM report_rollups WHERE grain = 'quarter'")
    op.execute("DELETE FROM rollup_periods WHERE grain = 'quarter'")
    _grain_check(_MONTH_OR_DAY)
    op.drop_index(_INDEX, table_name="report_rollups")
    op.create_index(
        _INDEX,
        "report_rollups",
        [*_LEADING, "bin"],
        postgresql_include=["key1", "key2", *_MEASURES[1:]],
    )
