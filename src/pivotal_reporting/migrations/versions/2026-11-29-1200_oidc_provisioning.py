"""OpenID Connect: the tenant role may insert users; dashboard sessions keep provider roles

- A first sign-in through the identity provider creates the user's row inside the
  request's tenant transaction (``auth/provisioning.py``), so ``pivotal_tenant`` needs
  INSERT on ``users``; row-level security's WITH CHECK keeps the row in that organization.
- ``web_sessions.provider_roles``: the provider roles of the token a dashboard session
  was opened with (NULL for sessions of our own tokens and sign-in links). The session's
  permissions are those roles mapped through ``PIVOTAL_OIDC_ROLE_PERMISSIONS``, as for a
  bearer token of the provider.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

from pivotal_reporting.rls import TENANT_ROLE

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(f"GRANT INSERT ON users TO {TENANT_ROLE}")
    op.add_column("web_sessions", sa.Column("provider_roles", ARRAY(sa.Text()), nullable=True))


def downgrade() -> None:
    op.drop_column("web_sessions", "provider_roles")
    op.execute(f"REVOKE INSERT ON users FROM {TENANT_ROLE}")
