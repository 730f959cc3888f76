"""Every just-in-time user is audited: ``user_provisioned``, in the inserting transaction.

``auth/provisioning.py`` creates the user row of an OpenID Connect identity on first
sight and calls the recorder installed here (auth never imports the audit trail).
"""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.audit.service import record_event
from pivotal_reporting.auth.oidc import OidcIdentity

USER_PROVISIONED = "user_provisioned"


async def record_user_provisioned(
    session: AsyncSession, user_id: str, identity: OidcIdentity
) -> None:
    await record_event(
        session,
        organization_id=identity.organization_id,
        user_id=user_id,
        action=USER_PROVISIONED,
        resource="user",
        resource_id=user_id,
        details={
            "issuer": identity.issuer,
            "subject": identity.subject,
            "email": identity.email or identity.subject,
            "roles": list(identity.roles),
        },
    )


def install_provisioning_audit(app: FastAPI) -> None:
    app.state.record_user_provisioned = record_user_provisioned
