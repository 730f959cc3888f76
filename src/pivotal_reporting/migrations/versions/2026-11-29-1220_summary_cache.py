"""A data version per organization and report, for the exact summary cache

``rollup_changes`` logs every write to a report's source rows, but a refresh deletes
the rows it consumed, so neither its size nor its largest id can tell two states of
the data apart. ``rollup_changes_consumed`` counts the deleted rows (a statement
trigger on the log, in the deleting transaction), so that

    version = count(log rows) + consumed

only ever grows, in every snapshot: a committed change adds a log row, a refresh moves
rows from one term to the other. TRUNCATE counts too: of the log (its rows are counted
first), and of a source table (every organization's version of that report is bumped). ``reports/cache.py`` serves a cached summary only
while this version (and the organization's names version) is unchanged.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pivotal_reporting.rls import TENANT_ROLE, disable_tenant_rls, enable_tenant_rls

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COUNT_FUNCTION = """
CREATE FUNCTION count_consumed_rollup_changes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    INSERT INTO rollup_changes_consumed AS c (organization_id, report_type, consumed)
    SELECT organization_id, report_type, count(*) FROM old_rows
    GROUP BY organization_id, report_type
    ON CONFLICT (organization_id, report_type)
    DO UPDATE SET consumed = c.consumed + EXCLUDED.consumed;
    RETURN NULL;
END
$$
"""

# TRUNCATE has no transition table. Of the log: count its rows first (BEFORE). Of a
# source table: the log trigger of migration 0007 logs only the periods already built,
# so every organization's version of that report is bumped here as well.
_TRUNCATE_LOG_FUNCTION = """
CREATE FUNCTION count_truncated_rollup_changes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    INSERT INTO rollup_changes_consumed AS c (organization_id, report_type, consumed)
    SELECT organization_id, report_type, count(*) FROM rollup_changes
    GROUP BY organization_id, report_type
    ON CONFLICT (organization_id, report_type)
    DO UPDATE SET consumed = c.consumed + EXCLUDED.consumed;
    RETURN NULL;
END
$$
"""
_TRUNCATE_SOURCE_FUNCTION = """
CREATE FUNCTION bump_rollup_changes_on_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    INSERT INTO rollup_changes_consumed AS c (organization_id, report_type, consumed)
    SELECT id, TG_ARGV[0], 1 FROM organizations
    ON CONFLICT (organization_id, report_type) DO UPDATE SET consumed = c.consumed + 1;
    RETURN NULL;
END
$$
"""
SOURCES = {
    "quotes": "quote_cycle_time",
    "invoices": "invoice_settlement_time",
    "payments": "payments_received",
    "time_entries": "time_approvals",
}


def upgrade() -> None:
    op.create_table(
        "rollup_changes_consumed",
        sa.Column("organization_id", sa.Text(), nullable=False),
        sa.Column("report_type", sa.Text(), nullable=False),
        sa.Column("consumed", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "organization_id", "report_type", name="pk_rollup_changes_consumed"
        ),
    )
    for statement in enable_tenant_rls("rollup_changes_consumed"):
        op.execute(statement)
    # The trigger runs as the owner whoever deletes the log rows.
    op.execute(
        "CREATE POLICY derived_data ON rollup_changes_consumed TO CURRENT_USER "
        "USING (true) WITH CHECK (true)"
    )
    op.execute(f"GRANT SELECT ON rollup_changes_consumed TO {TENANT_ROLE}")
    op.execute(_COUNT_FUNCTION)
    op.execute(
        "CREATE TRIGGER rollup_changes_consumed AFTER DELETE ON rollup_changes "
        "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION count_consumed_rollup_changes()"
    )
    op.execute(_TRUNCATE_LOG_FUNCTION)
    op.execute(
        "CREATE TRIGGER rollup_changes_truncated BEFORE TRUNCATE ON rollup_changes "
        "FOR EACH STATEMENT EXECUTE FUNCTION count_truncated_rollup_changes()"
    )
    op.execute(_TRUNCATE_SOURCE_FUNCTION)
    for table, report in SOURCES.items():
        op.execute(
            f"CREATE TRIGGER {table}_summary_cache_truncate AFTER TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION bump_rollup_changes_on_truncate('{report}')"
        )


def downgrade() -> None:
    for table in SOURCES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_summary_cache_truncate ON {table}")
    op.execute("DROP FUNCTION IF EXISTS bump_rollup_changes_on_truncate()")
    op.execute("DROP TRIGGER IF EXISTS rollup_changes_truncated ON rollup_changes")
    op.execute("DROP FUNCTION IF EXISTS count_truncated_rollup_changes()")
    op.execute("DROP TRIGGER IF EXISTS rollup_changes_consumed ON rollup_changes")
    op.execute("DROP FUNCTION IF EXISTS count_consumed_rollup_changes()")
    op.execute("DROP POLICY IF EXISTS derived_data ON rollup_changes_consumed")
    for statement in disable_tenant_rls("rollup_changes_consumed"):
        op.execute(statement)
    op.drop_table("rollup_changes_consumed")
