"""FastAPI dependencies: the authenticated Principal and per-router permission checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pivotal_reporting.auth.oidc import oidc_verifier
from pivotal_reporting.auth.principal import Principal, read_principal
from pivotal_reporting.auth.provisioning import principal_for_identity, provisioning_recorder
from pivotal_reporting.auth.sessions import SESSION_COOKIE, principal_from_cookie
from pivotal_reporting.auth.tokens import VERIFIED_TOKEN, verify_token
from pivotal_reporting.db import Database
from pivotal_reporting.errors import Forbidden, Unauthorized

_bearer = HTTPBearer(
    auto_error=False,
    description="A JWT from `pivotal-reporting token`, or from the OpenID Connect provider "
    "when PIVOTAL_OIDC_ISSUER is set (docs/oidc.md).",
)


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    database: Annotated[Database, Depends(get_database)],
) -> Principal:
    """Resolve the caller once per request from the bearer token (or, without one, from
    the dashboard's session cookie: ``auth/sessions.py``, CSRF checked there)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        if request.cookies.get(SESSION_COOKIE):
            web_principal = await principal_from_cookie(request, database)
            request.state.principal = web_principal
            return web_principal
        raise Unauthorized()
    principal = await principal_for_token(request, database, credentials.credentials)
    request.state.principal = principal
    return principal


async def principal_for_token(request: Request, database: Database, token: str) -> Principal:
    """The Principal of ``token``: the provider's when an OIDC issuer is set, else ours."""
    settings = request.app.state.settings
    if settings.oidc_issuer:
        identity = await oidc_verifier(request.app).verify(token)
        return await principal_for_identity(
            database,
            identity,
            settings.oidc_role_permissions,
            provisioning_recorder(request.app),
        )
    state = request.scope.get("state") or {}
    if state.get(VERIFIED_TOKEN) == token:  # verified moments ago by the rate limiter
        claims = state["token_claims"]
    else:
        claims = verify_token(settings, token)
    principal = await read_principal(database, claims)
    if principal is None:
        raise Unauthorized("The token's user is unknown or no longer active.")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require(permission: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits only holders of ``permission`` (refusals are audited)."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.has(permission):
            return principal
        raise Forbidden(
            f"This action requires the '{permission}' permission.",
            audit_details={"required_permission": permission},
        )

    return check
