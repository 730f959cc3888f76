"""Covering indexes for the summary reports' window scans

Each summary reads one organization's rows in a time window and only a handful of
columns, so each gets ``(organization_id, <window column>) INCLUDE (<those columns>)``:
the report is then an index-only range scan (no heap visits once vacuumed), which keeps
one organization with a million rows inside the 250 ms p95 SLO. Derived values (cycle,
settlement and approval days) are cheap arithmetic on included columns, so no stored
generated columns are needed (and bulk loaders stay unaware of them).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, window column, included columns, partial-index predicate)
REPORT_INDEXES: tuple[tuple[str, str, tuple[str, ...], str | None], ...] = (
    (
        "quotes",
        "decided_at",
        ("created_at", "status", "customer_id", "project_id"),
        "decided_at IS NOT NULL",
    ),
    (
        "invoices",
        "issue_date",
        ("status", "customer_id", "currency", "total_amount", "balance_due", "due_date", "paid_at"),
        None,
    ),
    (
        "payments",
        "paid_at",
        ("customer_id", "method", "currency", "amount"),
        "status = 'completed'",
    ),
    (
        "time_entries",
        "work_date",
        ("user_id", "project_id", "status", "hours", "billable", "submitted_at", "approved_at"),
        None,
    ),
)


def upgrade() -> None:
    for table, column, include, where in REPORT_INDEXES:
        op.create_index(
            f"ix_{table}_organization_id_{column}",
            table,
            ["organization_id", column],
            unique=False,
            postgresql_include=list(include),
            postgresql_where=sa.text(where) if where else None,
        )


def downgrade() -> None:
    for table, column, _include, _where in reversed(REPORT_INDEXES):
        op.drop_index(f"ix_{table}_organization_id_{column}", table_name=table)
