"""Export lifecycle: indexes for the stalled-job sweeper

The sweeper looks for active export rows (pending/processing) whose queue job is
finished or gone; a partial index keeps that scan proportional to active jobs, and
``queue_job_id`` is indexed for the join with ``procrastinate_jobs``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 23:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("export_jobs_queue_job_id_idx", "export_jobs", ["queue_job_id"], unique=False)
    op.create_index(
        "export_jobs_active_updated_idx",
        "export_jobs",
        ["updated_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('pending', 'processing')"),
    )


def downgrade() -> None:
    op.drop_index("export_jobs_active_updated_idx", table_name="export_jobs")
    op.drop_index("export_jobs_queue_job_id_idx", table_name="export_jobs")
