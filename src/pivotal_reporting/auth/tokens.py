"""HS256 bearer tokens: minting (CLI, demo) and strict verification (API)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from pivotal_reporting.config import Settings
from pivotal_reporting.errors import Unauthorized
from pivotal_reporting.validation import is_valid_id

ALGORITHM = "HS256"
ORG_CLAIM = "org"


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    organization_id: str


def mint_token(
    settings: Settings, *, user_id: str, organization_id: str, expires_in: timedelta
) -> str:
    """A signed token for ``user_id`` of ``organization_id``, valid for ``expires_in``."""
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": user_id,
        ORG_CLAIM: organization_id,
        "iat": now,
        "exp": now + expires_in,
    }
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    return jwt.encode(claims, settings.resolved_jwt_secret(), algorithm=ALGORITHM)


def verify_token(settings: Settings, token: str) -> TokenClaims:
    """Verify signature, algorithm, expiry and required claims; raise ``Unauthorized``."""
    required = ["exp", "sub", ORG_CLAIM]
    if settings.jwt_audience:
        required.append("aud")
    if settings.jwt_issuer:
        required.append("iss")
    try:
        claims = jwt.decode(
            token,
            settings.resolved_jwt_secret(),
            algorithms=[ALGORITHM],  # never "none", never an algorithm we did not configure
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": required},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The bearer token has expired.") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("The bearer token is invalid.") from exc
    user_id, organization_id = claims.get("sub"), claims.get(ORG_CLAIM)
    if not is_valid_id(user_id) or not is_valid_id(organization_id):  # e.g. a NUL byte
        raise Unauthorized("The bearer token is invalid.")
    return TokenClaims(user_id=user_id, organization_id=organization_id)
