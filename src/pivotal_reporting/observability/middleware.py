"""The outermost middleware: request id, HTTP metrics by route template, one access line.

Pure ASGI (no ``BaseHTTPMiddleware``): it wraps ``send`` to learn the status and add
``X-Request-ID``, and reads the matched route from the scope after the app ran. A
request that never reached the router (rate limited) is matched here against the app's
route templates; a path matching no route is ``<unmatched>``, so raw paths never become
label values.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pivotal_reporting.metrics import HTTP_DURATION, HTTP_REQUESTS, VALIDATION_ERRORS
from pivotal_reporting.observability.logs import request_id_var

log = logging.getLogger("pivotal_reporting.access")

UNMATCHED_ROUTE = "<unmatched>"
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


def app_path(scope: Scope) -> str:
    """The request path below the mount point (``root_path`` stripped when present)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _declared_paths(app: Any) -> Iterator[str]:
    """Every route's full path template, also inside FastAPI's included routers."""
    for route in getattr(getattr(app, "router", None), "routes", ()):
        contexts = getattr(route, "effective_route_contexts", None)
        candidates = contexts() if callable(contexts) else [route]
        for candidate in candidates:
            path = getattr(candidate, "path", None)
            if isinstance(path, str) and path:
                yield path


def _route_patterns(app: Any) -> list[tuple[re.Pattern[str], str]]:
    """``(regex, template)`` per route, compiled once per app."""
    state = getattr(app, "state", None)
    patterns: list[tuple[re.Pattern[str], str]] | None = getattr(state, "route_patterns", None)
    if patterns is None:
        patterns = [(compile_path(path)[0], path) for path in dict.fromkeys(_declared_paths(app))]
        if state is not None:
            state.route_patterns = patterns
    return patterns


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/v1/reports/export/{job_id}``), never the raw path.

    Requests that never reached the router (rate limited) are matched here by path.
    """
    patterns = _route_patterns(scope.get("app"))
    routed = getattr(scope.get("route"), "path", None)
    if routed is not None and any(template == routed for _, template in patterns):
        return str(routed)
    path = app_path(scope)
    for regex, template in patterns:
        if regex.match(path):
            return template
    return UNMATCHED_ROUTE


def initialise_validation_series(scope: Scope) -> None:
    """Export ``pivotal_data_validation_errors_total`` at 0 for every ``/v1/`` route.

    ``increase()`` cannot see the first increment of a series born at 1, so without this
    the first invalid request on a route would never fire the alert.
    """
    for _, template in _route_patterns(scope.get("app")):
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
