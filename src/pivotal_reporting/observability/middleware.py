"""The outermost middleware: request id, HTTP metrics by route template, one access line.

Pure ASGI (no ``BaseHTTPMiddleware``): it wraps ``send`` to learn the status and add
``X-Request-ID``, and labels the request by its route template after the app ran
(:mod:`pivotal_reporting.route_templates`), so raw paths never become label values.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pivotal_reporting.metrics import HTTP_DURATION, HTTP_REQUESTS, VALIDATION_ERRORS
from pivotal_reporting.observability.logs import request_id_var
from pivotal_reporting.route_templates import route_patterns, route_template

log = logging.getLogger("pivotal_reporting.access")

REQUEST_ID_HEADER = b"x-request-id"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def incoming_request_id(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` when it is a sane token, else a fresh one."""
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            candidate = value.decode("latin-1")
            if _VALID_REQUEST_ID.fullmatch(candidate):
                return candidate
    return uuid.uuid4().hex


def initialise_validation_series(scope: Scope) -> None:
    """Export ``pivotal_data_validation_errors_total`` at 0 for every ``/v1/`` route.

    ``increase()`` cannot see the first increment of a series born at 1, so without this
    the first invalid request on a route would never fire the alert.
    """
    for _, template in route_patterns(scope.get("app")):
        if template.startswith("/v1/"):
            VALIDATION_ERRORS.labels(route=template)


def _identity(scope: Scope) -> tuple[str | None, str | None]:
    """(organization, user) of the caller, as resolved by auth or by the rate limiter."""
    state: dict[str, Any] = scope.get("state") or {}
    principal = state.get("principal")
    if principal is not None:
        return principal.organization_id, principal.user_id
    claims = state.get("token_claims")
    if claims is not None:
        return claims.organization_id, claims.user_id
    return None, None


class RequestContextMiddleware:
    """Request id in and out, ``pivotal_http_*`` metrics, one JSON access log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.series_ready = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.series_ready:
            initialise_validation_series(scope)
            self.series_ready = True
        request_id = incoming_request_id(scope)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    h for h in message.get("headers", []) if h[0].lower() != REQUEST_ID_HEADER
                ]
                headers.append((REQUEST_ID_HEADER, request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._record(scope, status, time.perf_counter() - started, request_id)
            request_id_var.reset(token)

    @staticmethod
    def _record(scope: Scope, status: int, seconds: float, request_id: str) -> None:
        route, method = route_template(scope), scope["method"]
        HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
        HTTP_DURATION.labels(method=method, route=route).observe(seconds)
        organization_id, user_id = _identity(scope)
        fields = {
            "event": "http_request",
            "request_id": request_id,
            "organization_id": organization_id,
            "user_id": user_id,
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
        }
        log.info("%s %s %s", method, route, status, extra={"fields": fields})
