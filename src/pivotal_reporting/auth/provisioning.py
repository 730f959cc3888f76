"""From a provider identity to our Principal: just-in-time users and mapped permissions.

- The user row's id is derived from the issuer and the subject (``oidc_`` + 32 hex digits
  of their SHA-256), so the same person is the same row on every sign-in without a
  mapping table, and two providers cannot collide.
- On first sight the row is inserted into the organization named by the token (which must
  exist: otherwise 401) and a ``user_provisioned`` audit event is appended, in the same
  transaction, by the recorder the audit package installs on the app
  (``audit/provisioning.py``; auth never imports the audit trail). Concurrent first
  requests insert one row and write one event.
- Permissions come from the token's roles through ``PIVOTAL_OIDC_ROLE_PERMISSIONS`` on
  every request: the provider is the authority, so a role it withdraws is gone with the
  next token. Roles granted in our own ``user_roles`` table are not consulted.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.auth.oidc import OidcIdentity, oidc_user_id
from pivotal_reporting.auth.principal import Principal, load_principal
from pivotal_reporting.auth.tokens import TokenClaims
from pivotal_reporting.db import Database
from pivotal_reporting.errors import Forbidden, Unauthorized

log = logging.getLogger(__name__)

# Appends the audit event of a user row just inserted, in the inserting transaction.
ProvisioningRecorder = Callable[[AsyncSession, str, OidcIdentity], Awaitable[None]]

_ORGANIZATION_EXISTS = text("SELECT 1 FROM organizations WHERE id = :org AND deleted_at IS NULL")
_INSERT_USER = text(
    """
    INSERT INTO users (id, organization_id, email, display_name)
    VALUES (:id, :org, :email, :display_name)
    ON CONFLICT DO NOTHING
    RETURNING id
    """
)
_USER_EXISTS = text("SELECT 1 FROM users WHERE id = :id")

_unmapped_roles_logged: set[str] = set()


def permissions_for(roles: Iterable[str], mapping: Mapping[str, list[str]]) -> frozenset[str]:
    """The union of the mapped roles' permissions; an unmapped role grants nothing."""
    granted: set[str] = set()
    for role in roles:
        permissions = mapping.get(role)
        if permissions is None:
            if role not in _unmapped_roles_logged:  # once per role and process
                _unmapped_roles_logged.add(role)
                log.warning(
                    "OIDC role %r is not in PIVOTAL_OIDC_ROLE_PERMISSIONS; it grants nothing",
                    role,
                )
            continue
        granted.update(permissions)
    return frozenset(granted)


def provisioning_recorder(app: FastAPI) -> ProvisioningRecorder:
    """The recorder installed by ``audit.provisioning.install_provisioning_audit``."""
    recorder: ProvisioningRecorder | None = getattr(app.state, "record_user_provisioned", None)
    if recorder is None:  # a wiring error: never provision a user without its audit event
        raise RuntimeError("no audit recorder for provisioned users is installed on the app")
    return recorder


async def principal_for_identity(
    database: Database,
    identity: OidcIdentity,
    role_permissions: Mapping[str, list[str]],
    record_provisioned: ProvisioningRecorder,
) -> Principal:
    """The Principal of ``identity``, creating its user row on first sight."""
    claims = TokenClaims(
        user_id=oidc_user_id(identity.issuer, identity.subject),
        organization_id=identity.organization_id,
    )
    async with database.tenant_session(identity.organization_id) as session:
        principal = await load_principal(session, claims)
        if principal is None:
            principal = await _provision(session, claims, identity, record_provisioned)
    return replace(principal, permissions=permissions_for(identity.roles, role_permissions))


async def _provision(
    session: AsyncSession,
    claims: TokenClaims,
    identity: OidcIdentity,
    record_provisioned: ProvisioningRecorder,
) -> Principal:
    org = {"org": claims.organization_id}
    if (await session.execute(_ORGANIZATION_EXISTS, org)).first() is None:
        raise Unauthorized(
            f"The bearer token's organization '{identity.organization_id}' does not exist here."
        )
    email = identity.email or identity.subject
    inserted = (
        await session.execute(
            _INSERT_USER,
            {
                "id": claims.user_id,
                "org": claims.organization_id,
                "email": email,
                "display_name": identity.name or email,
            },
        )
    ).first()
    if inserted is not None:
        await record_provisioned(session, claims.user_id, identity)
        log.info("provisioned user %s for OIDC subject of %s", claims.user_id, identity.issuer)
    principal = await load_principal(session, claims)
    if principal is not None:
        return principal
    if (await session.execute(_USER_EXISTS, {"id": claims.user_id})).first() is not None:
        raise Unauthorized("The token's user is unknown or no longer active.")
    raise Forbidden(
        f"The email address {email!r} already belongs to another user of this organization; "
        "an administrator must rename or remove that user before this identity can sign in."
    )
