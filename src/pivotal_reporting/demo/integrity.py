"""Foreign keys checked set-based, for loads that skip the per-row checks.

A superuser can bulk-load with ``session_replication_role = replica`` (what
``pg_restore --disable-triggers`` does): foreign-key triggers do not fire, which saves
about a third of the load time (4 million per-row checks for a million rows per table).
Every foreign key of the loaded tables is then verified here with one anti-join each,
read from the catalog so that a key added later is covered too; one orphan aborts the
load. CHECK, NOT NULL and UNIQUE constraints are enforced either way.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

# Every foreign key whose referencing table is one of ``tables``, with its column pairs.
_FOREIGN_KEYS = """
SELECT c.conname, child.relname, parent.relname,
       array_agg(ca.attname ORDER BY k.ord), array_agg(pa.attname ORDER BY k.ord)
FROM pg_constraint AS c
JOIN pg_class AS child ON child.oid = c.conrelid
JOIN pg_class AS parent ON parent.oid = c.confrelid
CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(child_att, parent_att, ord)
JOIN pg_attribute AS ca ON ca.attrelid = c.conrelid AND ca.attnum = k.child_att
JOIN pg_attribute AS pa ON pa.attrelid = c.confrelid AND pa.attnum = k.parent_att
WHERE c.contype = 'f' AND child.relnamespace = 'public'::regnamespace
  AND child.relname = ANY(%s)
GROUP BY c.conname, child.relname, parent.relname
ORDER BY child.relname, c.conname
"""


# Every table with a foreign key to organizations, and that key's column.
_TENANT_TABLES = """
SELECT DISTINCT c.conrelid::regclass::text, a.attname
FROM pg_constraint AS c
JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
WHERE c.contype = 'f' AND c.confrelid = 'organizations'::regclass AND cardinality(c.conkey) = 1
ORDER BY 1
"""


class OrphanRowsError(RuntimeError):
    """Generated rows that reference a missing row: a bug in the generator."""


def skip_row_checks(conn: psycopg.Connection[Any]) -> bool:
    """Turn per-row foreign-key triggers off for this transaction if we may (superuser)."""
    row = conn.execute("SELECT current_setting('is_superuser') = 'on'").fetchone()
    if row is None or not row[0]:
        return False
    conn.execute("SET LOCAL session_replication_role = replica")
    return True


def delete_organizations_in_bulk(
    conn: psycopg.Connection[Any], organization_ids: list[str]
) -> None:
    """Delete organizations and every row of theirs, one statement per table.

    For a transaction without row checks (:func:`skip_row_checks`): where the cascade
    from ``organizations`` would delete row by row and check each deleted row's
    referrers, this deletes each tenant table's rows of those organizations at once.
    Complete because every tenant table has a foreign key to ``organizations`` and every
    other reference is composite with ``organization_id``, so it never leaves the tenant.
    """
    for table, column in conn.execute(_TENANT_TABLES).fetchall():
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(
                sql.SQL(table), sql.Identifier(column)
            ),
            (organization_ids,),
        )
    conn.execute("DELETE FROM organizations WHERE id = ANY(%s)", (organization_ids,))


def verify_foreign_keys(
    conn: psycopg.Connection[Any], tables: tuple[str, ...], organization_ids: list[str]
) -> None:
    """Raise :class:`OrphanRowsError` if a row this transaction wrote for these
    organizations breaks a foreign key of its table."""
    problems = []
    for name, child, parent, child_cols, parent_cols in conn.execute(
        _FOREIGN_KEYS, (list(tables),)
    ):
        matches = sql.SQL(" AND ").join(
            sql.SQL("p.{} = c.{}").format(sql.Identifier(p), sql.Identifier(c))
            for c, p in zip(child_cols, parent_cols, strict=True)
        )
        # MATCH SIMPLE: a row with a NULL in the key references nothing.
        present = sql.SQL(" AND ").join(
            sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(c)) for c in child_cols
        )
        query = sql.SQL(
            "SELECT count(*) FROM {child} AS c"
            " WHERE c.organization_id = ANY(%s) AND c.xmin = pg_current_xact_id()::xid"
            " AND {present} AND NOT EXISTS (SELECT FROM {parent} AS p WHERE {matches})"
        ).format(
            child=sql.Identifier(child),
            parent=sql.Identifier(parent),
            present=present,
            matches=matches,
        )
        row = conn.execute(query, (organization_ids,)).fetchone()
        if row and row[0]:
            problems.append(f"{child}.{name}: {row[0]} row(s) reference a missing {parent} row")
    if problems:
        raise OrphanRowsError("; ".join(problems))
