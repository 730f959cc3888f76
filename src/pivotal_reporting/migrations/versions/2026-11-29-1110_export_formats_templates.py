"""Export formats and templates: xlsx, pdf, parquet; chosen columns; saved templates

- ``export_jobs.format`` also allows ``xlsx``, ``pdf`` and ``parquet``;
- ``export_jobs.columns``: the chosen columns in order (NULL: all of them);
- ``export_templates``: saved export requests, tenant-scoped by row-level security,
  private to their owner unless ``shared``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from pivotal_reporting.rls import TENANT_ROLE, disable_tenant_rls, enable_tenant_rls

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FORMATS = "format IN ('csv', 'json', 'xlsx', 'pdf', 'parquet')"
REPORT_TYPES = (
    "report_type IN ('quote_cycle_time', 'invoice_settlement_time', "
    "'payments_received', 'time_approvals')"
)


def upgrade() -> None:
    op.drop_constraint(op.f("ck_export_jobs_format"), "export_jobs", type_="check")
    op.create_check_constraint(op.f("ck_export_jobs_format"), "export_jobs", FORMATS)
    op.add_column("export_jobs", sa.Column("columns", postgresql.JSONB(), nullable=True))
    op.create_table(
        "export_templates",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("organization_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("report_type", sa.String(length=50), nullable=False),
        sa.Column("format", sa.String(length=10), nullable=False),
        sa.Column(
            "filters",
            postgresql.JSONB(),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("columns", postgresql.JSONB(), nullable=True),
        sa.Column("shared", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(FORMATS, name=op.f("ck_export_templates_format")),
        sa.CheckConstraint(REPORT_TYPES, name=op.f("ck_export_templates_report_type")),
        sa.CheckConstraint(
            "length(name) BETWEEN 1 AND 200", name=op.f("ck_export_templates_name_length")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_export_templates_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_export_templates_organization_id_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_templates")),
    )
    op.create_index(
        "ix_export_templates_organization_id_user_id",
        "export_templates",
        ["organization_id", "user_id"],
    )
    op.create_index(
        "ix_export_templates_organization_id_shared",
        "export_templates",
        ["organization_id"],
        postgresql_where=sa.text("shared"),
    )
    for statement in enable_tenant_rls("export_templates"):
        op.execute(statement)
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON export_templates TO {TENANT_ROLE}")


def downgrade() -> None:
    op.execute(f"REVOKE ALL ON export_templates FROM {TENANT_ROLE}")
    for statement in disable_tenant_rls("export_templates"):
        op.execute(statement)
    op.drop_index("ix_export_templates_organization_id_shared", table_name="export_templates")
    op.drop_index("ix_export_templates_organization_id_user_id", table_name="export_templates")
    op.drop_table("export_templates")
    op.execute("DELETE FROM export_jobs WHERE format NOT IN ('csv', 'json')")
    op.drop_column("export_jobs", "columns")
    op.drop_constraint(op.f("ck_export_jobs_format"), "export_jobs", type_="check")
    op.create_check_constraint(
        op.f("ck_export_jobs_format"), "export_jobs", "format IN ('csv', 'json')"
    )
