"""Dashboard: browser sessions, one-time sign-in links, and NOTIFY for live pages

- ``web_sessions`` / ``web_signin_links``: tenant tables (row-level security like the
  others) holding SHA-256 digests of the cookie and link secrets (``models/web_session.py``).
- ``pivotal_events`` notifications, which the API LISTENs to and fans out over
  Server-Sent Events (``events/broker.py``):
  - every insert or update of an export job (state change or progress, whoever wrote it:
    worker, cancel, sweeper) sends ``{"kind": "export", "org", "user", "id", "status",
    "processed", "total"}``;
  - every statement that logs rollup changes (the triggers of migration 0007 fire on any
    write to the four source tables) sends ``{"kind": "figures", "org", "report"}`` once
    per organization and report.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pivotal_reporting.rls import TENANT_ROLE, disable_tenant_rls, enable_tenant_rls

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "pivotal_events"
TABLES = ("web_sessions", "web_signin_links")

_EXPORT_NOTIFY = f"""
CREATE FUNCTION notify_export_job() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', json_build_object(
        'kind', 'export', 'org', NEW.organization_id, 'user', NEW.user_id, 'id', NEW.id,
        'status', NEW.status, 'processed', NEW.processed_rows, 'total', NEW.total_rows)::text);
    RETURN NULL;
END
$$
"""

_FIGURES_NOTIFY = f"""
CREATE FUNCTION notify_rollup_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', json_build_object(
        'kind', 'figures', 'org', c.organization_id, 'report', c.report_type)::text)
    FROM (SELECT DISTINCT organization_id, report_type FROM new_rows) AS c;
    RETURN NULL;
END
$$
"""  # noqa: S608 -- reviewed: constants only, values are bound


def _user_fks(table: str) -> list[sa.ForeignKeyConstraint]:
    return [
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=f"fk_{table}_organization_id_organizations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            name=f"fk_{table}_organization_id_user_id_users",
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("organization_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("csrf_hash", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_web_sessions"),
        *_user_fks("web_sessions"),
    )
    op.create_table(
        "web_signin_links",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("organization_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("session_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_web_signin_links"),
        *_user_fks("web_signin_links"),
    )
    for table in TABLES:
        op.create_index(
            f"ix_{table}_organization_id_user_id", table, ["organization_id", "user_id"]
        )
        op.create_index(f"ix_{table}_expires_at", table, ["expires_at"])
        for statement in enable_tenant_rls(table):
            op.execute(statement)
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {TENANT_ROLE}")

    op.execute(_EXPORT_NOTIFY)
    op.execute(
        "CREATE TRIGGER export_jobs_notify AFTER INSERT OR UPDATE ON export_jobs "
        "FOR EACH ROW EXECUTE FUNCTION notify_export_job()"
    )
    op.execute(_FIGURES_NOTIFY)
    op.execute(
        "CREATE TRIGGER rollup_changes_notify AFTER INSERT ON rollup_changes "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION notify_rollup_change()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS rollup_changes_notify ON rollup_changes")
    op.execute("DROP FUNCTION IF EXISTS notify_rollup_change()")
    op.execute("DROP TRIGGER IF EXISTS export_jobs_notify ON export_jobs")
    op.execute("DROP FUNCTION IF EXISTS notify_export_job()")
    for table in reversed(TABLES):
        for statement in disable_tenant_rls(table):
            op.execute(statement)
        op.drop_table(table)
