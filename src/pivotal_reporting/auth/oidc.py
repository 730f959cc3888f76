"""OpenID Connect bearer tokens: discovery, a JWKS cache, and the claims we read.

With ``PIVOTAL_OIDC_ISSUER`` set, every bearer token is verified here and nowhere else:

- the header's ``alg`` must be RS256 or ES256 (never HS*, never ``none``) and match the
  algorithm of the provider key named by ``kid``;
- the keys come from the ``jwks_uri`` of ``<issuer>/.well-known/openid-configuration``,
  cached for ``oidc_jwks_cache_seconds``; a token with an unknown ``kid`` refetches them
  at once (at most every ``oidc_jwks_min_refresh_seconds``), so a rotated-in key works
  without a restart and a key the provider removed stops working at the next refetch;
- ``iss``, ``aud``, ``exp``, ``iat`` and ``sub`` are required, and the lifetime cap and
  numeric-date rules of ``auth/tokens.py`` apply as to our own tokens;
- the organization and the roles are read from configurable claims.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
from fastapi import FastAPI

from pivotal_reporting.auth.tokens import TokenClaims, check_lifetime
from pivotal_reporting.config import Settings
from pivotal_reporting.errors import ServiceUnavailable, Unauthorized

log = logging.getLogger(__name__)

ACCEPTED_ALGORITHMS = frozenset({"RS256", "ES256"})
DISCOVERY_PATH = "/.well-known/openid-configuration"


@dataclass(frozen=True)
class OidcIdentity:
    """What a verified provider token says about its bearer."""

    issuer: str
    subject: str
    organization_id: str
    roles: tuple[str, ...]
    email: str | None
    name: str | None
    expires_at: datetime


def oidc_user_id(issuer: str, subject: str) -> str:
    """Our user id for ``subject`` of ``issuer``: stable, and distinct across providers."""
    digest = hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()
    return f"oidc_{digest[:32]}"


class ProviderUnavailable(ServiceUnavailable):
    """The provider's discovery document or keys cannot be fetched (and none are cached)."""

    def __init__(self) -> None:
        super().__init__("The identity provider cannot be reached; please retry shortly.")


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` in ``claims``; dots descend into objects (``realm_access.roles``).

    A claim whose own name contains the dots wins over descending.
    """
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def roles_from(value: Any) -> tuple[str, ...]:
    """Roles from a claim value: a list of strings, or one string of space-separated roles."""
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, Sequence) and all(isinstance(role, str) for role in value):
        return tuple(value)
    if value is not None:
        log.warning("the OIDC roles claim is not a list of strings; no roles are read from it")
    return ()


class ProviderKeys:
    """The provider's signing keys by ``kid``, fetched over HTTP and cached."""

    def __init__(self, settings: Settings) -> None:
        assert settings.oidc_issuer is not None
        self._issuer = settings.oidc_issuer
        self._ttl = settings.oidc_jwks_cache_seconds
        self._min_refresh = settings.oidc_jwks_min_refresh_seconds
        self._timeout = settings.oidc_http_timeout_seconds
        self._keys: dict[str | None, jwt.PyJWK] | None = None
        self._metadata: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (fetched with the keys, as often)."""
        if self._keys is None or time.monotonic() - self._fetched_at > self._ttl:
            await self._refresh(stale_after=self._ttl)
        return self._metadata

    async def key_for(self, kid: str | None) -> jwt.PyJWK:
        """The key named ``kid`` (a token without ``kid``: the provider's only key)."""
        if self._keys is None or time.monotonic() - self._fetched_at > self._ttl:
            await self._refresh(stale_after=self._ttl)
        key = self._lookup(kid)
        if key is None:
            # A rotated-in key: refetch now, unless we did very recently (a flood of
            # tokens with made-up key ids must not become a flood of requests).
            await self._refresh(stale_after=self._min_refresh)
            key = self._lookup(kid)
        if key is None:
            raise Unauthorized(
                "The bearer token is signed by a key the identity provider does not publish."
            )
        return key

    def _lookup(self, kid: str | None) -> jwt.PyJWK | None:
        keys = self._keys or {}
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))
        return keys.get(kid)

    async def _refresh(self, *, stale_after: float) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched_at < stale_after and self._keys is not None:
                return  # another request refreshed while we waited
            try:
                metadata, keys = await self._fetch()
            except (httpx.HTTPError, ValueError) as exc:
                if self._keys is None:
                    log.error("cannot fetch the OIDC provider's keys: %s", exc)
                    raise ProviderUnavailable() from exc
                # Keep serving the keys we have; try again after the short interval.
                log.warning(
                    "cannot refresh the OIDC provider's keys (keeping the cached ones): %s", exc
                )
                self._fetched_at = time.monotonic() - self._ttl + self._min_refresh
                return
            self._keys, self._metadata = keys, metadata
            self._fetched_at = time.monotonic()

    async def _fetch(self) -> tuple[dict[str, Any], dict[str | None, jwt.PyJWK]]:
        async with httpx.AsyncClient(timeout=self._timeout) as http:
            response = await http.get(self._issuer.rstrip("/") + DISCOVERY_PATH)
            response.raise_for_status()
            discovery = response.json()
            if not isinstance(discovery, dict) or discovery.get("issuer") != self._issuer:
                raise ValueError(
                    f"the discovery document's issuer is not {self._issuer!r} "
                    "(PIVOTAL_OIDC_ISSUER must equal the provider's issuer exactly)"
                )
            jwks_uri = discovery.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise ValueError("the discovery document has no jwks_uri")
            response = await http.get(jwks_uri)
            response.raise_for_status()
            document = response.json()
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise ValueError("the JWKS document has no 'keys' list")
        keys: dict[str | None, jwt.PyJWK] = {}
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(entry)
            except jwt.PyJWTError as exc:
                log.warning("skipping an unusable JWKS key %r: %s", entry.get("kid"), exc)
                continue
            if key.algorithm_name in ACCEPTED_ALGORITHMS:
                keys[entry.get("kid")] = key
        log.info("fetched %d signing keys of the OIDC provider %s", len(keys), self._issuer)
        return discovery, keys


class OidcVerifier:
    """Verifies provider tokens and reads the identity from their claims."""

    def __init__(self, settings: Settings) -> None:
        assert settings.oidc_issuer is not None
        assert settings.oidc_audience is not None
        self.settings = settings
        self.issuer = settings.oidc_issuer
        self.audience = settings.oidc_audience
        self.keys = ProviderKeys(settings)

    async def verify(
        self, token: str, *, audience: str | None = None, nonce: str | None = None
    ) -> OidcIdentity:
        """Verify ``token`` for ``audience`` (default: the API's); ``nonce``: an ID token's."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("The bearer token is invalid.") from exc
        algorithm = header.get("alg")
        if algorithm not in ACCEPTED_ALGORITHMS:
            raise Unauthorized(
                "The bearer token is invalid: only RS256 and ES256 tokens of the identity "
                "provider are accepted."
            )
        kid = header.get("kid")
        key = await self.keys.key_for(kid if isinstance(kid, str) else None)
        if key.algorithm_name != algorithm:
            raise Unauthorized("The bearer token is invalid: its algorithm does not match its key.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=audience or self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The bearer token has expired.") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("The bearer token is invalid.") from exc
        check_lifetime(self.settings, claims)
        if nonce is not None and claims.get("nonce") != nonce:
            raise Unauthorized("The ID token does not answer this sign-in (nonce).")
        return self._identity(claims)

    def _identity(self, claims: dict[str, Any]) -> OidcIdentity:
        subject = claims.get("sub")
        organization = claim_at(claims, self.settings.oidc_org_claim)
        if not isinstance(subject, str) or not subject:
            raise Unauthorized("The bearer token is invalid.")
        if not isinstance(organization, str) or not organization:
            raise Unauthorized(
                f"The bearer token names no organization (claim '{self.settings.oidc_org_claim}')."
            )
        email, name = claims.get("email"), claims.get("name")
        return OidcIdentity(
            issuer=self.issuer,
            subject=subject,
            organization_id=organization,
            roles=roles_from(claim_at(claims, self.settings.oidc_roles_claim)),
            email=email if isinstance(email, str) and email else None,
            name=name if isinstance(name, str) and name else None,
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )


async def oidc_token_claims(app: FastAPI, token: str) -> TokenClaims:
    """The (user, organization) a provider token names, verified (no database)."""
    identity = await oidc_verifier(app).verify(token)
    return TokenClaims(
        user_id=oidc_user_id(identity.issuer, identity.subject),
        organization_id=identity.organization_id,
    )


def oidc_verifier(app: FastAPI) -> OidcVerifier:
    """The application's verifier (and so its key cache), made on first use."""
    verifier: OidcVerifier | None = getattr(app.state, "oidc_verifier", None)
    if verifier is None:
        verifier = OidcVerifier(app.state.settings)
        app.state.oidc_verifier = verifier
    return verifier
