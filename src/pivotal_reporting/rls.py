"""SQL for row-level security, shared by migrations so every tenant table gets the same.

Policies:
- ``tenant_isolation`` (every role): rows of ``app.organization_id`` only. After a
  transaction-local setting ends it reads ``''``, so ``NULLIF`` makes it fail closed.
- ``maintenance`` (the migrating owner only): every row, when the owner's own
  transaction sets ``app.maintenance = on`` (cross-tenant CLI jobs). ``pivotal_tenant``
  can never match it.
"""

from __future__ import annotations

TENANT_ROLE = "pivotal_tenant"
ORG_SETTING = "NULLIF(current_setting('app.organization_id', true), '')"
MAINTENANCE_SETTING = "current_setting('app.maintenance', true) = 'on'"


def create_tenant_role() -> str:
    return f"""
    DO $$
    BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{TENANT_ROLE}') THEN
            CREATE ROLE {TENANT_ROLE} NOLOGIN;
        END IF;
    END
    $$;
    GRANT {TENANT_ROLE} TO CURRENT_USER;
    GRANT USAGE ON SCHEMA public TO {TENANT_ROLE};
    """


def enable_tenant_rls(table: str, key_column: str = "organization_id") -> list[str]:
    """Statements that force RLS on ``table`` keyed on ``key_column``."""
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_isolation ON {table} "
        f"USING ({key_column} = {ORG_SETTING}) WITH CHECK ({key_column} = {ORG_SETTING})",
        f"CREATE POLICY maintenance ON {table} TO CURRENT_USER "
        f"USING ({MAINTENANCE_SETTING}) WITH CHECK ({MAINTENANCE_SETTING})",
    ]


def disable_tenant_rls(table: str) -> list[str]:
    return [
        f"DROP POLICY IF EXISTS maintenance ON {table}",
        f"DROP POLICY IF EXISTS tenant_isolation ON {table}",
        f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
    ]
