"""FastAPI dependencies: the authenticated Principal and per-router permission checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pivotal_reporting.audit.service import record_event
from pivotal_reporting.auth.principal import Principal, load_principal
from pivotal_reporting.auth.tokens import verify_token
from pivotal_reporting.db import Database
from pivotal_reporting.errors import Forbidden, Unauthorized

_bearer = HTTPBearer(auto_error=False, description="A JWT from `pivotal-reporting token`.")


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    database: Annotated[Database, Depends(get_database)],
) -> Principal:
    """Resolve the caller once per request from the bearer token."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized()
    claims = verify_token(request.app.state.settings, credentials.credentials)
    async with database.tenant_session(claims.organization_id) as session:
        principal = await load_principal(session, claims)
    if principal is None:
        raise Unauthorized("The token's user is unknown or no longer active.")
    request.state.principal = principal
    return principal


def _route_template(request: Request) -> str:
    route = request.scope.get("route")
    template = getattr(route, "path", None)
    return template if isinstance(template, str) else request.url.path


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require(permission: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits only holders of ``permission``; denials are audited."""

    async def check(request: Request, principal: CurrentPrincipal) -> Principal:
        if principal.has(permission):
            return principal
        database: Database = request.app.state.database
        async with database.tenant_session(principal.organization_id) as session:
            await record_event(
                session,
                organization_id=principal.organization_id,
                user_id=principal.user_id,
                action="access_denied",
                resource="route",
                resource_id=_route_template(request),
                details={"method": request.method, "required_permission": permission},
            )
        raise Forbidden(f"This action requires the '{permission}' permission.")

    return check
