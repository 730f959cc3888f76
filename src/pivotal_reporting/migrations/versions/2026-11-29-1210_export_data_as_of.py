"""Export jobs record the instant their rows are exact as of (``data_as_of``)

A completed export's rows come from one snapshot, read on the read replica when there
is one (docs/read-replica.md); ``data_as_of`` is that snapshot's instant: the commit time
of the last transaction the replica had replayed, or when the primary took the snapshot.
Null for jobs that have not completed (and for jobs completed before this revision).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("export_jobs", sa.Column("data_as_of", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("export_jobs", "data_as_of")
