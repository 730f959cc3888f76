"""Dashboard sign-in and sign-out: ``GET /signin``, ``POST``/``DELETE /v1/session``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import Field

from pivotal_reporting.auth import sessions
from pivotal_reporting.auth.dependencies import CurrentPrincipal, get_database
from pivotal_reporting.auth.oidc_signin import provider_session
from pivotal_reporting.auth.principal import load_principal
from pivotal_reporting.auth.schemas import MeRead
from pivotal_reporting.auth.tokens import verify_token
from pivotal_reporting.db import Database
from pivotal_reporting.errors import AppError, Unauthorized, problem_responses
from pivotal_reporting.schema_base import CamelModel

router = APIRouter(tags=["identity"])
DatabaseDep = Annotated[Database, Depends(get_database)]


class SessionCreate(CamelModel):
    token: str = Field(min_length=1, max_length=4096, description="A bearer token to sign in with.")


@router.get("/signin", include_in_schema=False)
async def signin_with_link(
    request: Request,
    database: DatabaseDep,
    code: Annotated[str, Query(max_length=400)] = "",
) -> Response:
    """Redeem a one-time sign-in link, set the session cookies, open the dashboard."""
    try:
        opened = await sessions.redeem_signin_link(database, code)
    except AppError:
        return RedirectResponse("/?signin=failed", status_code=303)
    response = RedirectResponse("/", status_code=303)
    sessions.set_cookies(request, response, opened)
    return response


@router.post(
    "/v1/session",
    status_code=201,
    response_model=MeRead,
    summary="Exchange a bearer token for a browser session (cookie) ending when the token does",
    description="With an OpenID Connect issuer configured the token must be the provider's "
    "(docs/oidc.md); the session keeps its roles.",
    responses=problem_responses(400, 401, 413, 415, 422, 429, 503),
)
async def create_session(
    request: Request, body: SessionCreate, database: DatabaseDep, response: Response
) -> MeRead:
    if request.app.state.settings.oidc_issuer:
        provider_principal, provided = await provider_session(request, database, body.token)
        sessions.set_cookies(request, response, provided)
        return MeRead.from_principal(provider_principal)
    claims = verify_token(request.app.state.settings, body.token)
    async with database.tenant_session(claims.organization_id) as session:
        principal = await load_principal(session, claims)
        if principal is None:
            raise Unauthorized("The token's user is unknown or no longer active.")
        opened = await sessions.open_session(
            session,
            organization_id=claims.organization_id,
            user_id=claims.user_id,
            expires_at=sessions.token_expiry(body.token),
        )
    sessions.set_cookies(request, response, opened)
    return MeRead.from_principal(principal)


@router.delete(
    "/v1/session",
    status_code=204,
    summary="Sign out: end this browser session",
    responses=problem_responses(401, 403, 429, 503),
)
async def delete_session(
    request: Request, principal: CurrentPrincipal, database: DatabaseDep
) -> Response:
    response = Response(status_code=204)
    web_session: tuple[str, str] | None = getattr(request.state, "web_session", None)
    if web_session is not None:
        await sessions.revoke(database, *web_session)
    sessions.clear_cookies(request, response)
    return response
