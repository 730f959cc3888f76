"""Primary keys (organization_id, id) on every tenant table keyed by ``id`` alone

A distributed PostgreSQL (Citus) sharded by ``organization_id`` needs the distribution
column in every primary and unique key (docs/scaling.md). Fourteen tenant tables had a
primary key on ``id`` alone; each becomes ``(organization_id, id)``:

* eight (customers, projects, quotes, invoices, payments, time_entries, users, roles)
  also had ``UNIQUE (organization_id, id)``, the target of the composite foreign keys.
  The new primary key takes over that role and the unique constraint is dropped, so the
  table keeps one index on those columns, not two. PostgreSQL cannot hand a constraint's
  index to another constraint, so the foreign keys that referenced the unique constraint
  are dropped first and added again (the same definitions, read from the catalog) once
  the primary key exists; adding them checks the referencing rows again.
* six (export_jobs, export_templates, web_sessions, web_signin_links, audit_logs,
  rollup_changes) had no such twin: their new primary key builds its index.

Each table is altered once for its keys, in one statement (dropping its outgoing foreign
keys to those tables, the old keys, adding the new primary key), referencing tables
before the tables they reference; then once more to add its foreign keys back. No
column changes type and no table is rewritten; ``id`` stays NOT NULL. No unique index
without a constraint exists on ``(organization_id, id)`` to promote with ``ADD PRIMARY
KEY USING INDEX``, so each primary key builds one index. The whole migration runs in the
upgrade's transaction and holds its tables' locks until it commits (timings on a
1M-row database: docs/scaling.md).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Tables that had UNIQUE (organization_id, id) beside the primary key (id).
TWINNED = (
    "customers",
    "projects",
    "quotes",
    "invoices",
    "payments",
    "time_entries",
    "users",
    "roles",
)
# Tables keyed by (id) with no such twin.
UNTWINNED = (
    "export_jobs",
    "export_templates",
    "web_sessions",
    "web_signin_links",
    "audit_logs",
    "rollup_changes",
)
KEYED = frozenset(TWINNED + UNTWINNED)
# Every table whose keys change or that references one of TWINNED, referencing tables
# first: a table's unique key can go only once no foreign key points at it.
ORDER = (
    "payments",
    "invoices",
    "quotes",
    "time_entries",
    "projects",
    "customers",
    "export_jobs",
    "export_templates",
    "web_sessions",
    "web_signin_links",
    "audit_logs",
    "rollup_changes",
    "user_roles",
    "role_permissions",
    "roles",
    "users",
)

# The foreign keys into the twinned tables, with their definitions.
_REFERENCING = sa.text(
    """
    SELECT con.conrelid::regclass::text AS table_name, con.conname,
           pg_get_constraintdef(con.oid) AS definition
    FROM pg_constraint con
    WHERE con.contype = 'f' AND con.connamespace = 'public'::regnamespace
      AND con.confrelid::regclass::text = ANY(:tables)
    ORDER BY con.conname
    """
)


def _referencing() -> dict[str, list[tuple[str, str]]]:
    rows = op.get_bind().execute(_REFERENCING, {"tables": list(TWINNED)}).all()
    by_table: dict[str, list[tuple[str, str]]] = {}
    for table, name, definition in rows:
        by_table.setdefault(table, []).append((name, definition))
    unknown = set(by_table) - set(ORDER)
    if unknown:  # a table this migration does not know of: do not guess its order
        raise RuntimeError(f"unexpected foreign keys into {TWINNED} from {sorted(unknown)}")
    return by_table


def _rekey(new_keys: dict[str, list[str]]) -> None:
    """Per table in ORDER: drop its foreign keys into TWINNED and apply ``new_keys``;
    then add those foreign keys back."""
    foreign_keys = _referencing()
    for table in ORDER:
        clauses = [f"DROP CONSTRAINT {name}" for name, _ in foreign_keys.get(table, [])]
        clauses += new_keys.get(table, [])
        if clauses:
            op.execute(f"ALTER TABLE {table} " + ", ".join(clauses))
    for table in ORDER:
        if table in foreign_keys:
            adds = [
                f"ADD CONSTRAINT {name} {definition}" for name, definition in foreign_keys[table]
            ]
            op.execute(f"ALTER TABLE {table} " + ", ".join(adds))


def upgrade() -> None:
    new_keys: dict[str, list[str]] = {}
    for table in KEYED:
        clauses = [f"DROP CONSTRAINT pk_{table}"]
        if table in TWINNED:
            clauses.append(f"DROP CONSTRAINT uq_{table}_organization_id_id")
        clauses.append(f"ADD CONSTRAINT pk_{table} PRIMARY KEY (organization_id, id)")
        new_keys[table] = clauses
    _rekey(new_keys)


def downgrade() -> None:
    # Fails (a unique violation) if two organizations came to share an id since the
    # upgrade, e.g. one OpenID Connect subject provisioned in both: ids are then only
    # unique within their organization, which the previous schema cannot hold.
    new_keys: dict[str, list[str]] = {}
    for table in KEYED:
        clauses = [f"DROP CONSTRAINT pk_{table}", f"ADD CONSTRAINT pk_{table} PRIMARY KEY (id)"]
        if table in TWINNED:
            clauses.append(
                f"ADD CONSTRAINT uq_{table}_organization_id_id UNIQUE (organization_id, id)"
            )
        new_keys[table] = clauses
    _rekey(new_keys)
