"""Report rollups by month and day, the change log that keeps them honest, an index

A one-year summary over a million-row organization reads half a million rows; the
rollups let it read each whole month (or day) of the window as pre-grouped rows
instead (see ``reports/rollups/``):

- ``report_rollups``: per organization, report, grain (``month`` or ``day``) and local
  period, the report's grouped partial aggregates ("facets": histogram bins,
  per-project counts, ...). Which column holds what is documented by each report module.
- ``rollup_periods``: which periods are built, in which time zone, by which facet SQL
  (a digest: changing a report's facets makes its periods stale) and under which
  version of the organization's names (``rollup_name_versions``, bumped by renames).
- ``rollup_changes``: an append-only log written by statement triggers on the four
  source tables, one row per organization and UTC date touched. A period with a logged
  change within a day of it is stale and is read from finer periods or the source rows
  instead, so a rollup never serves a figure that differs from the rows. The refresh
  consumes the log.

Existing rows are logged as changes here, so the first refresh builds every period.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 01:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pivotal_reporting.rls import TENANT_ROLE, disable_tenant_rls, enable_tenant_rls

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# source table -> (report type, the UTC date a row counts for; NULL: no report reads it)
SOURCES = {
    "quotes": ("quote_cycle_time", "(decided_at AT TIME ZONE 'UTC')::date"),
    "invoices": ("invoice_settlement_time", "issue_date"),
    "payments": ("payments_received", "(paid_at AT TIME ZONE 'UTC')::date"),
    "time_entries": ("time_approvals", "work_date"),
}
ROLLUP_TABLES = ("report_rollups", "rollup_periods", "rollup_changes", "rollup_name_versions")
# Covered by the rollup index: a request reads its periods by index-only scans.
MEASURES = (
    "key1",
    "key2",
    "key3",
    "day1",
    "day2",
    "flag",
    "n",
    "total",
    "low",
    "high",
    "amount",
    "amount2",
)

_LOG_FUNCTION = """
CREATE FUNCTION log_rollup_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    report text := TG_ARGV[0];
    day_of text := TG_ARGV[1];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO rollup_changes (organization_id, report_type, day)
        SELECT organization_id, report_type, period FROM rollup_periods
        WHERE report_type = report;
        RETURN NULL;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        EXECUTE format(
            'INSERT INTO rollup_changes (organization_id, report_type, day) '
            'SELECT DISTINCT organization_id, %L, %s FROM new_rows WHERE %s IS NOT NULL',
            report, day_of, day_of);
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        EXECUTE format(
            'INSERT INTO rollup_changes (organization_id, report_type, day) '
            'SELECT DISTINCT organization_id, %L, %s FROM old_rows WHERE %s IS NOT NULL',
            report, day_of, day_of);
    END IF;
    RETURN NULL;
END
$$
"""

# Rollups group by the names the reports publish; renaming (or deleting) a project,
# customer or user bumps its organization's names version, and a period built under
# another version is stale. (A counter, not a log of periods: a refresh running at the
# time of the rename may be building periods nobody can list yet.)
NAMED = {"projects": "name", "customers": "name", "users": "display_name"}

_RENAME_FUNCTION = """
CREATE FUNCTION bump_rollup_names() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    name_column text := TG_ARGV[0];
BEGIN
    IF TG_OP = 'UPDATE' THEN
        EXECUTE format(
            'INSERT INTO rollup_name_versions (organization_id, version) '
            'SELECT DISTINCT o.organization_id, 1 FROM old_rows o '
            'JOIN new_rows n ON n.id = o.id WHERE o.%1$I IS DISTINCT FROM n.%1$I '
            'ON CONFLICT (organization_id) '
            'DO UPDATE SET version = rollup_name_versions.version + 1',
            name_column);
    ELSE
        INSERT INTO rollup_name_versions (organization_id, version)
        SELECT DISTINCT organization_id, 1 FROM old_rows
        ON CONFLICT (organization_id) DO UPDATE SET version = rollup_name_versions.version + 1;
    END IF;
    RETURN NULL;
END
$$
"""


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def upgrade() -> None:
    op.create_table(
        "report_rollups",
        sa.Column("organization_id", sa.Text(), nullable=False),
        sa.Column("report_type", sa.Text(), nullable=False),
        sa.Column("grain", sa.Text(), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("facet", sa.Text(), nullable=False),
        sa.Column("key1", sa.Text()),
        sa.Column("key2", sa.Text()),
        sa.Column("key3", sa.Text()),
        sa.Column("day1", sa.Date()),
        sa.Column("day2", sa.Date()),
        sa.Column("flag", sa.Boolean()),
        sa.Column("bin", sa.Integer()),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.Float()),
        sa.Column("low", sa.Float()),
        sa.Column("high", sa.Float()),
        sa.Column("amount", sa.Numeric()),
        sa.Column("amount2", sa.Numeric()),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_report_rollups_organization_id",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_report_rollups_lookup",
        "report_rollups",
        ["organization_id", "report_type", "facet", "grain", "period", "bin"],
        postgresql_include=list(MEASURES),
    )
    op.create_table(
        "rollup_periods",
        sa.Column("organization_id", sa.Text(), nullable=False),
        sa.Column("report_type", sa.Text(), nullable=False),
        sa.Column("grain", sa.Text(), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("timezone", sa.Text(), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("names_version", sa.BigInteger(), nullable=False),
        sa.Column(
            "refreshed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint(
            "organization_id", "report_type", "grain", "period", name="pk_rollup_periods"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_rollup_periods_organization_id",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "grain = 'day' OR (grain = 'month' AND period = date_trunc('month', period)::date)",
            name="ck_rollup_periods_grain",
        ),
    )
    op.create_table(
        "rollup_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("organization_id", sa.Text(), nullable=False),
        sa.Column("report_type", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        # No foreign key: triggers log deletes cascading from a deleted organization
        # too; the refresh drops the log of an organization that is gone.
    )
    op.create_index(
        "ix_rollup_changes_organization_id_report_type_day",
        "rollup_changes",
        ["organization_id", "report_type", "day"],
    )
    op.create_table(
        "rollup_name_versions",
        # No foreign key either: deletes cascading from a deleted organization bump it.
        sa.Column("organization_id", sa.Text(), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    for table in ROLLUP_TABLES:
        for statement in enable_tenant_rls(table):
            op.execute(statement)
    # The triggers run as the owner whoever writes the source rows: they may log and
    # reset builds without the maintenance setting.
    for table in ("rollup_periods", "rollup_changes", "rollup_name_versions"):
        op.execute(
            f"CREATE POLICY derived_data ON {table} TO CURRENT_USER USING (true) WITH CHECK (true)"
        )
    op.execute(f"GRANT SELECT ON {', '.join(ROLLUP_TABLES)} TO {TENANT_ROLE}")

    op.execute(_LOG_FUNCTION)
    # Reading every organization's rows to log them needs the maintenance policy.
    op.execute("SELECT set_config('app.maintenance', 'on', true)")
    for table, (report, day_of) in SOURCES.items():
        args = f"{_quoted(report)}, {_quoted(day_of)}"
        for event, referencing in (
            ("INSERT", "NEW TABLE AS new_rows"),
            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
            ("DELETE", "OLD TABLE AS old_rows"),
        ):
            op.execute(
                f"CREATE TRIGGER {table}_rollup_{event.lower()} AFTER {event} ON {table} "
                f"REFERENCING {referencing} FOR EACH STATEMENT "
                f"EXECUTE FUNCTION log_rollup_change({args})"
            )
        op.execute(
            f"CREATE TRIGGER {table}_rollup_truncate AFTER TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION log_rollup_change({args})"
        )
        op.execute(
            f"INSERT INTO rollup_changes (organization_id, report_type, day) "  # noqa: S608 -- reviewed: constants only, values are bound
            f"SELECT DISTINCT organization_id, {_quoted(report)}, {day_of} FROM {table} "
            f"WHERE {day_of} IS NOT NULL"
        )

    op.execute(_RENAME_FUNCTION)
    for table, name_column in NAMED.items():
        op.execute(
            f"CREATE TRIGGER {table}_rollup_rename AFTER UPDATE ON {table} "
            "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
            f"EXECUTE FUNCTION bump_rollup_names({_quoted(name_column)})"
        )
        op.execute(
            f"CREATE TRIGGER {table}_rollup_delete AFTER DELETE ON {table} "
            "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
            f"EXECUTE FUNCTION bump_rollup_names({_quoted(name_column)})"
        )

    # Overdue-only invoice summaries read open invoices alone (12% of them in the demo).
    op.create_index(
        "ix_invoices_organization_id_issue_date_open",
        "invoices",
        ["organization_id", "issue_date"],
        postgresql_include=[
            "status",
            "customer_id",
            "currency",
            "total_amount",
            "balance_due",
            "due_date",
            "paid_at",
        ],
        postgresql_where=sa.text("status IN ('issued', 'part_paid')"),
    )
    # Pending approvals depend on "now", so they are read from the rows: a small index.
    op.create_index(
        "ix_time_entries_organization_id_work_date_submitted",
        "time_entries",
        ["organization_id", "work_date"],
        postgresql_include=["hours", "submitted_at"],
        postgresql_where=sa.text("status = 'submitted'"),
    )


def downgrade() -> None:
    op.drop_index("ix_time_entries_organization_id_work_date_submitted", table_name="time_entries")
    op.drop_index("ix_invoices_organization_id_issue_date_open", table_name="invoices")
    for table in SOURCES:
        for event in ("insert", "update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_rollup_{event} ON {table}")
    for table in NAMED:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_rollup_rename ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_rollup_delete ON {table}")
    op.execute("DROP FUNCTION IF EXISTS bump_rollup_names()")
    op.execute("DROP FUNCTION IF EXISTS log_rollup_change()")
    for table in ROLLUP_TABLES:
        op.execute(f"DROP POLICY IF EXISTS derived_data ON {table}")
        for statement in disable_tenant_rls(table):
            op.execute(statement)
    for table in reversed(ROLLUP_TABLES):
        op.drop_table(table)
