"""Browser sessions for the dashboard: one-time sign-in links, cookies and CSRF.

- A **sign-in link** (``/signin?code=<org>.<secret>``, printed by ``serve --demo`` and
  ``pivotal-reporting login-link``) is single-use and short-lived; redeeming it opens a
  session that ends when the link says (never later than the token it stands for).
- A pasted **bearer token** (``POST /v1/session``) opens a session that ends when the
  token expires.
- With ``PIVOTAL_OIDC_ISSUER`` set, the **identity provider** signs the browser in
  (``auth/oidc_signin.py``: authorization code + PKCE), and a pasted token must be the
  provider's. Such a session keeps the token's provider roles
  (``web_sessions.provider_roles``) and its permissions are those roles mapped through
  ``PIVOTAL_OIDC_ROLE_PERMISSIONS``, exactly as for the provider's bearer tokens.
- The **session cookie** (``pivotal_session``, HttpOnly, SameSite=Strict, Secure under
  HTTPS) holds ``<org>.<secret>``; only the SHA-256 of the secret is stored, in the
  organization's ``web_sessions`` (row-level security), so a lookup is a tenant read.
- **CSRF**: double submit. The readable ``pivotal_csrf`` cookie must be echoed in the
  ``X-CSRF-Token`` header of every state-changing request, and its digest must be the
  session's. A cross-site page can neither read the cookie nor set the header.

The browser then calls the same ``/v1`` API: ``get_principal`` accepts the session
cookie where a bearer token is absent, under the same permissions and tenant rules.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import jwt
from fastapi import Request, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.auth.principal import Principal, load_principal
from pivotal_reporting.auth.provisioning import permissions_for
from pivotal_reporting.auth.tokens import TokenClaims
from pivotal_reporting.db import Database
from pivotal_reporting.errors import Forbidden, Unauthorized

SESSION_COOKIE = "pivotal_session"
CSRF_COOKIE = "pivotal_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LINK_LIFETIME = timedelta(minutes=15)
DEFAULT_SESSION_LIFETIME = timedelta(hours=8)

_INSERT_SESSION = text(
    "INSERT INTO web_sessions (id, organization_id, user_id, csrf_hash, expires_at, "
    "provider_roles) VALUES (:id, :org, :user_id, :csrf_hash, :expires_at, :provider_roles)"
)
# Opening a session or a link clears the same user's long-expired ones: the tables stay
# as small as the number of users times their recent sign-ins, with no sweeper.
_PRUNE_SESSIONS = text(
    "DELETE FROM web_sessions WHERE organization_id = :org AND user_id = :user_id "
    "AND (expires_at < now() - interval '1 day' OR revoked_at < now() - interval '1 day')"
)
_PRUNE_LINKS = text(
    "DELETE FROM web_signin_links WHERE organization_id = :org AND user_id = :user_id "
    "AND expires_at < now() - interval '1 day'"
)
_FIND_SESSION = text(
    "SELECT user_id, csrf_hash, expires_at, provider_roles FROM web_sessions "
    "WHERE id = :id AND organization_id = :org AND revoked_at IS NULL AND expires_at > now()"
)
_REVOKE_SESSION = text(
    "UPDATE web_sessions SET revoked_at = now() WHERE id = :id AND organization_id = :org "
    "AND revoked_at IS NULL"
)
_INSERT_LINK = text(
    "INSERT INTO web_signin_links (id, organization_id, user_id, expires_at, session_expires_at) "
    "VALUES (:id, :org, :user_id, :expires_at, :session_expires_at)"
)
_REDEEM_LINK = text(
    "UPDATE web_signin_links SET used_at = now() "
    "WHERE id = :id AND organization_id = :org AND used_at IS NULL AND expires_at > now() "
    "AND session_expires_at > now() RETURNING user_id, session_expires_at"
)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_credential(value: str | None) -> tuple[str, str] | None:
    """``<org>.<secret>`` → (org, secret); ``None`` if malformed."""
    if not value or len(value) > 400:
        return None
    org, sep, secret = value.rpartition(".")
    if not sep or not org or len(secret) < 32:
        return None
    return org, secret


@dataclass(frozen=True)
class OpenedSession:
    cookie: str
    csrf: str
    expires_at: datetime


async def open_session(
    session: AsyncSession,
    *,
    organization_id: str,
    user_id: str,
    expires_at: datetime,
    provider_roles: Sequence[str] | None = None,
) -> OpenedSession:
    secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    await session.execute(_PRUNE_SESSIONS, {"org": organization_id, "user_id": user_id})
    await session.execute(
        _INSERT_SESSION,
        {
            "id": digest(secret),
            "org": organization_id,
            "user_id": user_id,
            "csrf_hash": digest(csrf),
            "expires_at": expires_at,
            "provider_roles": None if provider_roles is None else list(provider_roles),
        },
    )
    return OpenedSession(f"{organization_id}.{secret}", csrf, expires_at)


async def create_signin_link(
    session: AsyncSession,
    *,
    organization_id: str,
    user_id: str,
    session_expires_at: datetime,
    link_lifetime: timedelta = LINK_LIFETIME,
) -> str:
    """A one-time code ``<org>.<secret>`` for ``/signin?code=``."""
    secret = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    await session.execute(_PRUNE_LINKS, {"org": organization_id, "user_id": user_id})
    await session.execute(
        _INSERT_LINK,
        {
            "id": digest(secret),
            "org": organization_id,
            "user_id": user_id,
            "expires_at": min(now + link_lifetime, session_expires_at),
            "session_expires_at": session_expires_at,
        },
    )
    return f"{organization_id}.{secret}"


async def redeem_signin_link(database: Database, code: str) -> OpenedSession:
    """Use a sign-in code once; the session ends when the link said. 401 otherwise."""
    parts = split_credential(code)
    if parts is None:
        raise Unauthorized("This sign-in link is invalid.")
    org, secret = parts
    async with database.tenant_session(org) as session:
        row = (await session.execute(_REDEEM_LINK, {"id": digest(secret), "org": org})).first()
        if row is None:
            raise Unauthorized("This sign-in link is invalid, expired or already used.")
        principal = await load_principal(session, TokenClaims(row.user_id, org))
        if principal is None:
            raise Unauthorized("This sign-in link's user is no longer active.")
        return await open_session(
            session, organization_id=org, user_id=row.user_id, expires_at=row.session_expires_at
        )


def token_expiry(token: str) -> datetime:
    """The ``exp`` of a token that ``verify_token`` has already accepted."""
    claims = jwt.decode(token, options={"verify_signature": False})
    return datetime.fromtimestamp(int(claims["exp"]), UTC)


async def principal_from_cookie(request: Request, database: Database) -> Principal:
    """The caller of a cookie-authenticated request (CSRF checked for unsafe methods)."""
    parts = split_credential(request.cookies.get(SESSION_COOKIE))
    if parts is None:
        raise Unauthorized()
    org, secret = parts
    async with database.tenant_session(org) as session:
        row = (await session.execute(_FIND_SESSION, {"id": digest(secret), "org": org})).first()
        if row is None:
            raise Unauthorized("Your session has ended; sign in again.")
        if request.method not in SAFE_METHODS:
            check_csrf(request, row.csrf_hash)
        principal = await load_principal(session, TokenClaims(row.user_id, org))
    if principal is None:
        raise Unauthorized("Your user is no longer active.")
    if row.provider_roles is not None:
        mapping = request.app.state.settings.oidc_role_permissions
        principal = replace(principal, permissions=permissions_for(row.provider_roles, mapping))
    request.state.web_session = (org, digest(secret))
    return principal


def check_csrf(request: Request, csrf_hash: str) -> None:
    header = request.headers.get(CSRF_HEADER, "")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not header or not hmac.compare_digest(header, cookie):
        raise Forbidden(
            f"The {CSRF_HEADER} header must echo the {CSRF_COOKIE} cookie.",
            audit_details={"reason": "csrf"},
        )
    if not hmac.compare_digest(digest(header), csrf_hash):
        raise Forbidden("The CSRF token does not belong to this session.")


async def revoke(database: Database, org: str, session_id: str) -> None:
    async with database.tenant_session(org) as session:
        await session.execute(_REVOKE_SESSION, {"id": session_id, "org": org})


def set_cookies(request: Request, response: Response, opened: OpenedSession) -> None:
    secure = request.url.scheme == "https"
    max_age = max(0, int((opened.expires_at - datetime.now(UTC)).total_seconds()))
    for name, value, http_only in (
        (SESSION_COOKIE, opened.cookie, True),
        (CSRF_COOKIE, opened.csrf, False),
    ):
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            expires=opened.expires_at.astimezone(UTC),
            path="/",
            secure=secure,
            httponly=http_only,
            samesite="strict",
        )


def clear_cookies(request: Request, response: Response) -> None:
    secure = request.url.scheme == "https"
    for name, http_only in ((SESSION_COOKIE, True), (CSRF_COOKIE, False)):
        response.delete_cookie(name, path="/", secure=secure, httponly=http_only, samesite="strict")


def issue_signin_link_blocking(
    url: str,
    user_id: str,
    *,
    session_lifetime: timedelta,
    link_lifetime: timedelta = LINK_LIFETIME,
) -> str | None:
    """For the CLI: a one-time code for ``user_id`` (``None`` if no such active user)."""

    async def issue() -> str | None:
        database = Database.connect(url, pool_size=1)
        try:
            async with database.system_session() as session:
                org = (
                    await session.execute(
                        text(
                            "SELECT organization_id FROM users WHERE id = :id AND status = 'active'"
                        ),
                        {"id": user_id},
                    )
                ).scalar()
                if org is None:
                    return None
                return await create_signin_link(
                    session,
                    organization_id=org,
                    user_id=user_id,
                    session_expires_at=datetime.now(UTC) + session_lifetime,
                    link_lifetime=link_lifetime,
                )
        finally:
            await database.dispose()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(issue())
    # Called from a thread that already runs a loop: run ours in a worker thread.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, issue()).result()
