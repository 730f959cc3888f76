"""Row-level security on every tenant table, the tenant role, its grants, permissions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 23:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pivotal_reporting.rls import (
    TENANT_ROLE,
    create_tenant_role,
    disable_tenant_rls,
    enable_tenant_rls,
)

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READ_ONLY_TENANT_TABLES = (
    "users",
    "roles",
    "role_permissions",
    "user_roles",
    "customers",
    "projects",
    "quotes",
    "invoices",
    "payments",
    "time_entries",
)
PERMISSIONS = (
    ("reports.view_reports", "View report summaries and own export jobs"),
    ("reports.export_reports", "Create, cancel and download exports"),
    ("audit.view_audit_logs", "Read the organization's audit log"),
)


def upgrade() -> None:
    op.execute(create_tenant_role())
    for table in (*READ_ONLY_TENANT_TABLES, "export_jobs", "audit_logs", "audit_chain_heads"):
        for statement in enable_tenant_rls(table):
            op.execute(statement)
    for statement in enable_tenant_rls("organizations", key_column="id"):
        op.execute(statement)
    op.execute(f"GRANT SELECT ON organizations, permissions TO {TENANT_ROLE}")
    op.execute(f"GRANT SELECT ON {', '.join(READ_ONLY_TENANT_TABLES)} TO {TENANT_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON export_jobs TO {TENANT_ROLE}")
    # The audit log is append-only for the application.
    op.execute(f"GRANT SELECT, INSERT ON audit_logs TO {TENANT_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON audit_chain_heads TO {TENANT_ROLE}")
    permissions = sa.table(
        "permissions",
        sa.column("id", sa.Text),
        sa.column("name", sa.Text),
        sa.column("description", sa.Text),
    )
    op.bulk_insert(permissions, [{"id": p, "name": p, "description": d} for p, d in PERMISSIONS])


def downgrade() -> None:
    op.execute("DELETE FROM permissions")
    tables = (
        *READ_ONLY_TENANT_TABLES,
        "export_jobs",
        "audit_logs",
        "audit_chain_heads",
        "organizations",
    )
    op.execute(f"REVOKE ALL ON {', '.join(tables)}, permissions FROM {TENANT_ROLE}")
    for table in tables:
        for statement in disable_tenant_rls(table):
            op.execute(statement)
