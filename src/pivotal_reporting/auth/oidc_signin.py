"""Dashboard sign-in through the OpenID Connect provider: authorization code + PKCE.

``GET /oidc/login`` sends the browser to the provider's ``authorization_endpoint`` with a
fresh ``state``, ``nonce`` and PKCE ``code_challenge`` (S256), keeping ``state``, ``nonce``
and the ``code_verifier`` in a short-lived HttpOnly cookie scoped to ``/oidc/``
(SameSite=Lax: the provider's redirect back is a cross-site top-level navigation).

``GET /oidc/callback`` checks ``state``, exchanges the code at the ``token_endpoint``
(with the verifier, and the client secret when one is configured), verifies the ID token
exactly like a bearer token (keys, RS256/ES256, issuer, lifetime cap) for the client id
and the ``nonce``, provisions the user on first sight, and opens the same session cookie
as the other sign-ins (``auth/sessions.py``), ending when the ID token does and keeping
its provider roles, then redirects to ``/``. (That navigation still belongs to the
provider's cross-site redirect chain, so the browser does not send the SameSite=Strict
cookie with it; it does not need to: the page is public and its own same-origin
``/v1/me`` call carries the cookie. The browser test runs the two on different sites.)

Any failure lands on ``/?signin=provider-failed`` (logged with its reason); nothing of the
provider's answer is shown to the browser.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse

from pivotal_reporting.auth import sessions
from pivotal_reporting.auth.dependencies import get_database
from pivotal_reporting.auth.oidc import OidcIdentity, ProviderUnavailable, oidc_verifier
from pivotal_reporting.auth.principal import Principal
from pivotal_reporting.auth.provisioning import principal_for_identity, provisioning_recorder
from pivotal_reporting.config import Settings
from pivotal_reporting.db import Database
from pivotal_reporting.errors import AppError, NotFound, Unauthorized

log = logging.getLogger(__name__)

router = APIRouter(tags=["identity"])

FLOW_COOKIE = "pivotal_oidc_flow"
FLOW_COOKIE_PATH = "/oidc/"
FLOW_LIFETIME_SECONDS = 600
FAILED = "/?signin=provider-failed"


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: BASE64URL(SHA256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def client_id(settings: Settings) -> str:
    value = settings.oidc_client_id or settings.oidc_audience
    assert value is not None
    return value


def redirect_url(request: Request) -> str:
    settings: Settings = request.app.state.settings
    return settings.oidc_redirect_url or str(request.url_for("oidc_callback"))


def _endpoint(metadata: dict[str, Any], name: str) -> str:
    value = metadata.get(name)
    if not isinstance(value, str) or not value:
        log.error("the OIDC provider's discovery document has no %s", name)
        raise ProviderUnavailable()
    return value


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    if not settings.oidc_issuer:
        raise NotFound("Sign-in through an identity provider is not configured.")
    return settings


@router.get("/oidc/login", include_in_schema=False)
async def oidc_login(request: Request) -> Response:
    settings = _settings(request)
    metadata = await oidc_verifier(request.app).keys.metadata()
    authorize = _endpoint(metadata, "authorization_endpoint")
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id(settings),
            "redirect_uri": redirect_url(request),
            "scope": settings.oidc_scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    response = RedirectResponse(f"{authorize}{'&' if '?' in authorize else '?'}{query}", 302)
    response.set_cookie(
        FLOW_COOKIE,
        f"{state}.{nonce}.{verifier}",
        max_age=FLOW_LIFETIME_SECONDS,
        path=FLOW_COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )
    return response


@router.get("/oidc/callback", include_in_schema=False, name="oidc_callback")
async def oidc_callback(
    request: Request,
    database: Annotated[Database, Depends(get_database)],
    code: Annotated[str, Query(max_length=2048)] = "",
    state: Annotated[str, Query(max_length=512)] = "",
    error: Annotated[str, Query(max_length=256)] = "",
) -> Response:
    settings = _settings(request)
    try:
        nonce, verifier = _check_state(request, state)
        if error or not code:
            raise Unauthorized(f"the provider answered {error or 'without a code'}")
        id_token = await _exchange(request, settings, code, verifier)
        identity = await oidc_verifier(request.app).verify(
            id_token, audience=client_id(settings), nonce=nonce
        )
        _, opened = await _open(request, database, identity)
    except AppError as exc:
        log.warning("dashboard sign-in through the identity provider failed: %s", exc.detail)
        response: Response = RedirectResponse(FAILED, status_code=303)
    else:
        response = RedirectResponse("/", status_code=303)
        sessions.set_cookies(request, response, opened)
    response.delete_cookie(FLOW_COOKIE, path=FLOW_COOKIE_PATH)
    return response


def _check_state(request: Request, state: str) -> tuple[str, str]:
    parts = (request.cookies.get(FLOW_COOKIE) or "").split(".")
    if len(parts) != 3 or not state or not hmac.compare_digest(parts[0], state):
        raise Unauthorized("the sign-in state does not match this browser's (expired or forged)")
    return parts[1], parts[2]


async def _exchange(request: Request, settings: Settings, code: str, verifier: str) -> str:
    token_endpoint = _endpoint(await oidc_verifier(request.app).keys.metadata(), "token_endpoint")
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_url(request),
        "client_id": client_id(settings),
        "code_verifier": verifier,
    }
    auth = None
    if settings.oidc_client_secret is not None:
        auth = httpx.BasicAuth(client_id(settings), settings.oidc_client_secret.get_secret_value())
    try:
        async with httpx.AsyncClient(timeout=settings.oidc_http_timeout_seconds, auth=auth) as http:
            answer = await http.post(token_endpoint, data=form)
    except httpx.HTTPError as exc:
        raise Unauthorized(f"the token endpoint cannot be reached: {exc}") from exc
    body = (
        answer.json()
        if answer.headers.get("content-type", "").startswith("application/json")
        else {}
    )
    id_token = body.get("id_token") if isinstance(body, dict) else None
    if answer.status_code != 200 or not isinstance(id_token, str):
        error = body.get("error") if isinstance(body, dict) else None
        raise Unauthorized(
            f"the token endpoint answered {answer.status_code} {error or ''}".strip()
        )
    return id_token


async def _open(
    request: Request, database: Database, identity: OidcIdentity
) -> tuple[Principal, sessions.OpenedSession]:
    settings: Settings = request.app.state.settings
    principal = await principal_for_identity(
        database, identity, settings.oidc_role_permissions, provisioning_recorder(request.app)
    )
    async with database.tenant_session(principal.organization_id) as session:
        opened = await sessions.open_session(
            session,
            organization_id=principal.organization_id,
            user_id=principal.user_id,
            expires_at=identity.expires_at,
            provider_roles=identity.roles,
        )
    return principal, opened


async def provider_session(
    request: Request, database: Database, token: str
) -> tuple[Principal, sessions.OpenedSession]:
    """``POST /v1/session`` with an issuer configured: a provider token opens the session."""
    identity = await oidc_verifier(request.app).verify(token)
    return await _open(request, database, identity)
