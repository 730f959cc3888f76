"""A small pure-ASGI rate limiter over the ``limits`` library's async API.

Budget: ``rate_limit_per_minute`` requests in a moving 60-second window, per user on the
reporting endpoints (``/v1/...``); the key is the verified token's organization and
subject (an HMAC check, or the OIDC provider's signature with cached keys; no database),
else the client address. Storage is in-process
memory unless ``rate_limit_storage_url`` points at Redis, which several API processes
then share. Every limited response carries the IETF draft headers
(draft-ietf-httpapi-ratelimit-headers):

    RateLimit-Policy: "per-user";q=200;w=60
    RateLimit: "per-user";r=137;t=42

and a refused one answers 429 problem+json with ``Retry-After`` (seconds). If the
storage fails the request is refused with 503 (the spec's ``skipOnError: false``).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItemPerMinute
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pivotal_reporting.auth.oidc import oidc_token_claims
from pivotal_reporting.auth.tokens import VERIFIED_TOKEN, TokenClaims, verify_token
from pivotal_reporting.config import Settings
from pivotal_reporting.errors import AppError, problem_response
from pivotal_reporting.route_templates import app_path

log = logging.getLogger(__name__)

POLICY_NAME = "per-user"
LIMITED_PREFIX = "/v1/"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Policy": f'"{POLICY_NAME}";q={self.limit};w=60',
            "RateLimit": f'"{POLICY_NAME}";r={self.remaining};t={self.reset_seconds}',
        }


def _storage_uri(settings: Settings) -> str:
    url = settings.rate_limit_storage_url
    if not url:
        return "async+memory://"
    return url if url.startswith("async+") else f"async+{url}"


def _bearer_token(scope: Scope) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
    return None


class RateLimitMiddleware:
    """Counts and refuses ``/v1/`` requests; everything else passes untouched."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        prefix = settings.rate_limit_key_prefix
        self.item = RateLimitItemPerMinute(settings.rate_limit_per_minute, namespace=prefix)
        options: dict[str, str | float | bool] = {}
        if settings.rate_limit_storage_url:
            options["key_prefix"] = prefix
        self.limiter = MovingWindowRateLimiter(
            storage_from_string(_storage_uri(settings), **options)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not app_path(scope).startswith(LIMITED_PREFIX):
            await self.app(scope, receive, send)
            return
        try:
            decision = await self._decide(scope)
        except Exception:
            log.exception("rate limit storage failed; refusing the request")
            response = problem_response(
                503,
                "Rate limiting is temporarily unavailable; retry shortly.",
                code="rate_limit_unavailable",
                headers={"Retry-After": "5"},
            )
            await response(scope, receive, send)
            return
        if not decision.allowed:
            headers = decision.headers() | {"Retry-After": str(max(decision.reset_seconds, 1))}
            response = problem_response(
                429,
                f"Rate limit of {decision.limit} requests per minute exceeded; "
                f"retry in {max(decision.reset_seconds, 1)} s.",
                code="rate_limited",
                instance=scope["path"],
                headers=headers,
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, _with_headers(send, decision.headers()))

    async def _identity(self, scope: Scope) -> str:
        token = _bearer_token(scope)
        if token is not None:
            try:
                claims: TokenClaims = (
                    await oidc_token_claims(scope["app"], token)
                    if self.settings.oidc_issuer
                    else verify_token(self.settings, token)
                )
            except AppError:
                pass  # the route answers 401; the attempt still counts against the address
            else:
                state = scope.setdefault("state", {})
                state["token_claims"] = claims
                state[VERIFIED_TOKEN] = token  # auth takes these claims for this token
                return f"user:{claims.organization_id}:{claims.user_id}"
        client = scope.get("client")
        return f"ip:{client[0] if client else 'unknown'}"

    async def _decide(self, scope: Scope) -> Decision:
        identity = await self._identity(scope)
        allowed = await self.limiter.hit(self.item, identity)
        stats = await self.limiter.get_window_stats(self.item, identity)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        return Decision(allowed, self.item.amount, max(0, stats.remaining), reset)


def _with_headers(send: Send, extra: dict[str, str]) -> Send:
    encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *encoded]
        await send(message)

    return send_with_headers
