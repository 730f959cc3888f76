"""The typed Principal: who is calling, for which organization, with what permissions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.auth.tokens import TokenClaims
from pivotal_reporting.db import Database
from pivotal_reporting.errors import Forbidden

VIEW_REPORTS = "reports.view_reports"
EXPORT_REPORTS = "reports.export_reports"
VIEW_AUDIT_LOGS = "audit.view_audit_logs"

# One round trip; runs inside the claimed organization's tenant transaction, so row-level
# security already hides users of any other organization.
# ``{user_id}``, ``{org}``: bound parameters for ``load_principal``, literals for
# ``read_principal``'s one-message transaction.
_PRINCIPAL_QUERY = """
    SELECT u.id, u.email, u.display_name, o.id AS organization_id, o.name AS organization_name,
           o.timezone, o.base_currency,
           COALESCE(array_agg(DISTINCT p.name) FILTER (WHERE p.name IS NOT NULL), '{{}}')
             AS permissions
    FROM users u
    JOIN organizations o ON o.id = u.organization_id AND o.deleted_at IS NULL
    LEFT JOIN user_roles ur ON ur.organization_id = u.organization_id AND ur.user_id = u.id
    LEFT JOIN role_permissions rp ON rp.organization_id = ur.organization_id AND rp.role_id = ur.role_id
    LEFT JOIN permissions p ON p.id = rp.permission_id
    WHERE u.id = {user_id} AND u.organization_id = {org} AND u.status = 'active'
    GROUP BY u.organization_id, u.id, o.id
"""
_PRINCIPAL_SQL = text(_PRINCIPAL_QUERY.format(user_id=":user_id", org=":org"))


@dataclass(frozen=True)
class Principal:
    user_id: str
    email: str
    display_name: str
    organization_id: str
    organization_name: str
    timezone: str
    base_currency: str
    permissions: frozenset[str]

    def has(self, permission: str) -> bool:
        return permission in self.permissions

    def ensure_own_organization(
        self,
        organization_id: str | None,
        *,
        field: str = "organizationId",
        audit_details: Mapping[str, Any] | None = None,
    ) -> None:
        """Refuse (``Forbidden``, audited) an ``organizationId`` other than the caller's own.

        A request may name its own organization or none; naming it never widens the scope.
        ``field`` names the offending input in the message.
        """
        if organization_id is not None and organization_id != self.organization_id:
            raise Forbidden(f"{field} must be your own organization.", audit_details=audit_details)


async def load_principal(session: AsyncSession, claims: TokenClaims) -> Principal | None:
    """The active user named by ``claims`` in a live organization, or ``None``."""
    row = (
        await session.execute(
            _PRINCIPAL_SQL, {"user_id": claims.user_id, "org": claims.organization_id}
        )
    ).one_or_none()
    return None if row is None else _principal(dict(row._mapping))


async def read_principal(database: Database, claims: TokenClaims) -> Principal | None:
    """``load_principal`` in a transaction of its own, sent in one message (one round
    trip: every API request asks it)."""
    rows = await database.tenant_read(
        claims.organization_id,
        _PRINCIPAL_QUERY,
        user_id=claims.user_id,
        org=claims.organization_id,
    )
    return _principal(rows[0]) if rows else None


def _principal(row: Mapping[str, Any]) -> Principal:
    return Principal(
        user_id=row["id"],
        email=row["email"],
        display_name=row["display_name"],
        organization_id=row["organization_id"],
        organization_name=row["organization_name"],
        timezone=row["timezone"],
        base_currency=row["base_currency"].strip(),
        permissions=frozenset(row["permissions"]),
    )
