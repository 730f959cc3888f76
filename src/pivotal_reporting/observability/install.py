"""Installing the operations middleware in the one order that is correct.

Starlette runs the last-added middleware first, so the request-context middleware
(request id, access log, HTTP metrics) is added last: it sees every request, including
the ones the rate limiter refuses, and it times them all.
"""

from __future__ import annotations

from fastapi import FastAPI

from pivotal_reporting.body_limit import BodyLimitMiddleware
from pivotal_reporting.config import Settings
from pivotal_reporting.observability.middleware import RequestContextMiddleware
from pivotal_reporting.ratelimit.middleware import RateLimitMiddleware


def install_middleware(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(BodyLimitMiddleware)  # innermost: after the rate limit
    app.add_middleware(RateLimitMiddleware, settings=settings)
    app.add_middleware(RequestContextMiddleware)  # outermost of ours
