"""procrastinate's job-queue schema, applied from its own SQL inside our revision.

procrastinate has no Alembic integration; its schema file is the source of truth for
the installed version. The tenant role may defer jobs in the same transaction as the
export row it creates.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 23:10:00
"""

from collections.abc import Sequence

from alembic import op
from procrastinate.schema import SchemaManager

from pivotal_reporting.rls import TENANT_ROLE

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _raw_execute(sql: str) -> None:
    # The schema holds many statements and '%' signs: send it unparameterised.
    driver_connection = op.get_bind().connection.driver_connection
    assert driver_connection is not None
    driver_connection.execute(sql)


def upgrade() -> None:
    _raw_execute(SchemaManager.get_schema())
    _raw_execute(
        f"""
        DO $$
        DECLARE t record;
        BEGIN
            FOR t IN SELECT tablename FROM pg_tables
                     WHERE schemaname = 'public' AND tablename LIKE 'procrastinate%'
            LOOP
                EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO {TENANT_ROLE}', t.tablename);
            END LOOP;
            FOR t IN SELECT sequencename FROM pg_sequences
                     WHERE schemaname = 'public' AND sequencename LIKE 'procrastinate%'
            LOOP
                EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %I TO {TENANT_ROLE}', t.sequencename);
            END LOOP;
        END
        $$;
        """  # noqa: S608 -- reviewed: constants only, values are bound
    )


def downgrade() -> None:
    _raw_execute(
        """
        DO $$
        DECLARE obj record;
        BEGIN
            FOR obj IN SELECT tablename FROM pg_tables
                       WHERE schemaname = 'public' AND tablename LIKE 'procrastinate%'
            LOOP
                EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', obj.tablename);
            END LOOP;
            FOR obj IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
                       JOIN pg_namespace n ON n.oid = p.pronamespace
                       WHERE n.nspname = 'public' AND p.proname LIKE 'procrastinate%'
            LOOP
                EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', obj.signature);
            END LOOP;
            FOR obj IN SELECT t.typname FROM pg_type t
                       JOIN pg_namespace n ON n.oid = t.typnamespace
                       WHERE n.nspname = 'public' AND t.typname LIKE 'procrastinate%' AND t.typtype IN ('e', 'c')
            LOOP
                EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', obj.typname);
            END LOOP;
        END
        $$;
        """
    )
