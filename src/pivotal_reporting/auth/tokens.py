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
NUMERIC_DATE_CLAIMS = ("exp", "iat", "nbf")
LEEWAY_SECONDS = 30  # clock skew between the issuer and us (lifetime check only)


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    organization_id: str


def mint_token(
    settings: Settings, *, user_id: str, organization_id: str, expires_in: timedelta
) -> str:
    """A signed token for ``user_id`` of ``organization_id``, valid for ``expires_in``.

    ``ValueError`` when ``expires_in`` exceeds ``settings.jwt_max_lifetime_seconds``
    (the API would refuse such a token).
    """
    if expires_in.total_seconds() > settings.jwt_max_lifetime_seconds:
        raise ValueError(
            f"token lifetime {int(expires_in.total_seconds())} s exceeds "
            f"PIVOTAL_JWT_MAX_LIFETIME_SECONDS ({settings.jwt_max_lifetime_seconds} s)"
        )
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


# Request state key: the bearer token whose claims (``token_claims``) a middleware has
# already verified with ``verify_token`` in this request.
VERIFIED_TOKEN = "verified_token"  # noqa: S105 -- a state key, not a secret


def verify_token(settings: Settings, token: str) -> TokenClaims:
    """Verify signature, algorithm, expiry, lifetime and required claims.

    Raise ``Unauthorized`` for anything else, including ``exp``/``iat``/``nbf`` that are
    not JSON numbers (PyJWT would read ``"99999999999"``) and a lifetime beyond
    ``settings.jwt_max_lifetime_seconds``, counted from ``iat`` and from now.
    """
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
    check_lifetime(settings, claims)
    user_id, organization_id = claims.get("sub"), claims.get(ORG_CLAIM)
    if not is_valid_id(user_id) or not is_valid_id(organization_id):  # e.g. a NUL byte
        raise Unauthorized("The bearer token is invalid.")
    return TokenClaims(user_id=user_id, organization_id=organization_id)


def check_lifetime(settings: Settings, claims: dict[str, object]) -> None:
    """Numeric date claims only, and ``exp`` no further than the configured lifetime."""
    for name in NUMERIC_DATE_CLAIMS:
        value = claims.get(name)
        if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise Unauthorized(f"The bearer token is invalid: {name} must be a number.")
    exp = claims["exp"]
    assert isinstance(exp, int | float)
    limit = settings.jwt_max_lifetime_seconds
    issued = claims.get("iat")
    now = datetime.now(UTC).timestamp()
    too_long = exp - now > limit + LEEWAY_SECONDS
    if isinstance(issued, int | float):
        too_long = too_long or exp - issued > limit
    if too_long:
        raise Unauthorized(
            f"The bearer token lives longer than the accepted {limit} seconds; "
            "ask for a shorter-lived token."
        )
