"""OIDC just-in-time provisioning: the tenant role may insert users

A first sign-in through the identity provider creates the user's row inside the
request's tenant transaction (``auth/provisioning.py``), so ``pivotal_tenant`` needs
INSERT on ``users``; row-level security's WITH CHECK keeps the row in that organization.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 12:00:00
"""

from collections.abc import Sequence

from alembic import op

from pivotal_reporting.rls import TENANT_ROLE

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(f"GRANT INSERT ON users TO {TENANT_ROLE}")


def downgrade() -> None:
    op.execute(f"REVOKE INSERT ON users FROM {TENANT_ROLE}")
