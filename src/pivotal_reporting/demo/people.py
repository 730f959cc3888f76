"""Organizations, users and their roles (RBAC rows) for the demo."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import psycopg

from pivotal_reporting.demo.catalog import (
    ACCESS_LEVELS,
    ANCHOR,
    CONSULTANT_ROLE,
    FIRST_NAMES,
    LAST_NAMES,
    MANAGER_ROLE,
    DemoOrg,
)

# Organizations, people and roles predate the two years of activity.
SETUP_AT = ANCHOR - timedelta(days=800)

_INSERT_ORG = """
INSERT INTO organizations (id, name, base_currency, timezone, settings, created_at, updated_at)
VALUES (%(org)s, %(name)s, %(base_currency)s, %(tz)s, %(settings)s::jsonb, %(at)s, %(at)s)
"""

_INSERT_ROLE = """
INSERT INTO roles (id, organization_id, name, created_at) VALUES (%s, %s, %s, %s)
"""

_INSERT_ROLE_PERMISSION = """
INSERT INTO role_permissions (organization_id, role_id, permission_id)
SELECT %s, %s, id FROM permissions WHERE name = %s
"""

_INSERT_USER = """
INSERT INTO users (id, organization_id, email, display_name, status, created_at, updated_at)
VALUES (%s, %s, %s, %s, 'active', %s, %s)
"""

_INSERT_USER_ROLE = "INSERT INTO user_roles (organization_id, user_id, role_id) VALUES (%s, %s, %s)"

# Staff: consultants who log time; the first ``managers`` of them also approve it. The
# last one has left the firm (disabled) but keeps the time logged before leaving.
_INSERT_STAFF = """
INSERT INTO users (id, organization_id, email, display_name, status, created_at, updated_at)
SELECT 'usr_' || %(slug)s || '_staff_' || lpad(s::text, 4, '0'),
       %(org)s,
       lower(translate(first || '.' || last, 'äöüÄÖÜé ', 'aouAOUe')) || '@' || %(domain)s,
       first || ' ' || last,
       CASE WHEN s = %(staff)s AND s > 5 THEN 'disabled' ELSE 'active' END,
       %(at)s::timestamptz + s * interval '1 day',
       %(at)s::timestamptz + s * interval '1 day'
FROM generate_series(1, %(staff)s) AS s,
     -- A permutation of first x last names, so no two staff share a name.
     LATERAL (SELECT mod((s - 1) * 7919, %(combos)s) AS i) AS p,
     LATERAL (SELECT (%(first_names)s::text[])[1 + mod(i, %(n_first)s)] AS first,
                     (%(last_names)s::text[])[1 + i / %(n_first)s] AS last) AS n
"""

_INSERT_STAFF_ROLES = """
INSERT INTO user_roles (organization_id, user_id, role_id)
SELECT %(org)s, 'usr_' || %(slug)s || '_staff_' || lpad(s::text, 4, '0'),
       CASE WHEN s <= %(managers)s THEN %(manager_role)s ELSE %(consultant_role)s END
FROM generate_series(1, %(staff)s) AS s
"""


def insert_organization(conn: psycopg.Connection[Any], org: DemoOrg) -> None:
    profile = org.profile
    settings = {"exportRetentionDays": 30, "demo": True}
    conn.execute(
        _INSERT_ORG,
        {
            "org": org.org_id,
            "name": org.name,
            "base_currency": profile.base_currency,
            "tz": profile.timezone,
            "settings": json.dumps(settings),
            "at": SETUP_AT,
        },
    )


def insert_people(conn: psycopg.Connection[Any], org: DemoOrg) -> None:
    """Roles with their permissions, the three access-level users, and the staff."""
    with conn.cursor() as cur:
        for suffix, role_name, permissions in (*ACCESS_LEVELS, MANAGER_ROLE, CONSULTANT_ROLE):
            role_id = org.role_id(suffix)
            cur.execute(_INSERT_ROLE, (role_id, org.org_id, role_name, SETUP_AT))
            for permission in permissions:
                cur.execute(_INSERT_ROLE_PERMISSION, (org.org_id, role_id, permission))
        for (suffix, _, _), display_name in zip(ACCESS_LEVELS, org.profile.people, strict=True):
            user_id = org.user_id(suffix)
            email = f"{suffix}@{org.email_domain}"
            cur.execute(
                _INSERT_USER, (user_id, org.org_id, email, display_name, SETUP_AT, SETUP_AT)
            )
            cur.execute(_INSERT_USER_ROLE, (org.org_id, user_id, org.role_id(suffix)))
        params = {
            "org": org.org_id,
            "slug": org.slug,
            "domain": org.email_domain,
            "staff": org.staff,
            "managers": org.managers,
            "at": SETUP_AT,
            "first_names": list(FIRST_NAMES),
            "last_names": list(LAST_NAMES),
            "n_first": len(FIRST_NAMES),
            "combos": len(FIRST_NAMES) * len(LAST_NAMES),
            "manager_role": org.role_id(MANAGER_ROLE[0]),
            "consultant_role": org.role_id(CONSULTANT_ROLE[0]),
        }
        cur.execute(_INSERT_STAFF, params)
        cur.execute(_INSERT_STAFF_ROLES, params)


def staff_user_id_sql(index: str) -> str:
    """SQL for the id of staff member ``index`` (1-based SQL integer expression)."""
    return f"('usr_' || %(slug)s || '_staff_' || lpad(({index})::text, 4, '0'))"
