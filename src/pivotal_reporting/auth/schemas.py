"""Response schemas of the identity endpoint (camelCase on the wire)."""

from __future__ import annotations

from pivotal_reporting.auth.principal import Principal
from pivotal_reporting.schema_base import CamelModel


class UserRead(CamelModel):
    id: str
    email: str
    display_name: str


class OrganizationRead(CamelModel):
    id: str
    name: str
    timezone: str
    base_currency: str


class MeRead(CamelModel):
    user: UserRead
    organization: OrganizationRead
    permissions: list[str]

    @classmethod
    def from_principal(cls, principal: Principal) -> MeRead:
        return cls(
            user=UserRead(
                id=principal.user_id, email=principal.email, display_name=principal.display_name
            ),
            organization=OrganizationRead(
                id=principal.organization_id,
                name=principal.organization_name,
                timezone=principal.timezone,
                base_currency=principal.base_currency,
            ),
            permissions=sorted(principal.permissions),
        )
