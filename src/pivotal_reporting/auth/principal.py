"""The typed Principal: who is calling, for which organization, with what permissions."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.auth.tokens import TokenClaims

VIEW_REPORTS = "reports.view_reports"
EXPORT_REPORTS = "reports.export_reports"
VIEW_AUDIT_LOGS = "audit.view_audit_logs"

# One round trip; runs inside the claimed organization's tenant transaction, so row-level
# security already hides users of any other organization.
_PRINCIPAL_SQL = text(
    """
    SELECT u.id, u.email, u.display_name, o.id AS organization_id, o.name AS organization_name,
           o.timezone, o.base_currency,
           COALESCE(array_agg(DISTINCT p.name) FILTER (WHERE p.name IS NOT NULL), '{}') AS permissions
    FROM users u
    JOIN organizations o ON o.id = u.organization_id AND o.deleted_at IS NULL
    LEFT JOIN user_roles ur ON ur.organization_id = u.organization_id AND ur.user_id = u.id
    LEFT JOIN role_permissions rp ON rp.organization_id = ur.organization_id AND rp.role_id = ur.role_id
    LEFT JOIN permissions p ON p.id = rp.permission_id
    WHERE u.id = :user_id AND u.organization_id = :org AND u.status = 'active'
    GROUP BY u.id, o.id
    """
)


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


async def load_principal(session: AsyncSession, claims: TokenClaims) -> Principal | None:
    """The active user named by ``claims`` in a live organization, or ``None``."""
    row = (
        await session.execute(
            _PRINCIPAL_SQL, {"user_id": claims.user_id, "org": claims.organization_id}
        )
    ).one_or_none()
    if row is None:
        return None
    return Principal(
        user_id=row.id,
        email=row.email,
        display_name=row.display_name,
        organization_id=row.organization_id,
        organization_name=row.organization_name,
        timezone=row.timezone,
        base_currency=row.base_currency.strip(),
        permissions=frozenset(row.permissions),
    )
