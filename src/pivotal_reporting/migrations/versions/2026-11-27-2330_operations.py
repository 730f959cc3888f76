"""Operations: indexes for the retention sweep

Partial indexes keep each sweep proportional to what it can act on: jobs that still
hold a file, terminal rows, and the storage keys the orphan check looks up.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "export_jobs_retention_files_idx",
        "export_jobs",
        ["organization_id", "completed_at"],
        unique=False,
        postgresql_where=sa.text("storage_key IS NOT NULL AND file_deleted_at IS NULL"),
    )
    op.create_index(
        "export_jobs_retention_rows_idx",
        "export_jobs",
        ["organization_id", "ended_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('expired', 'failed', 'cancelled')"),
    )
    op.create_index(
        "export_jobs_storage_key_idx",
        "export_jobs",
        ["storage_key"],
        unique=False,
        postgresql_where=sa.text("storage_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("export_jobs_storage_key_idx", table_name="export_jobs")
    op.drop_index("export_jobs_retention_rows_idx", table_name="export_jobs")
    op.drop_index("export_jobs_retention_files_idx", table_name="export_jobs")
