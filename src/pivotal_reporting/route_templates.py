"""The route template a request matched, for metric labels, logs and audit events.

A request that never reached the router (rate limited) is matched here against the
app's route templates; a path matching no route is ``<unmatched>``, so raw paths (which
carry ids) never become label values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from starlette.routing import compile_path
from starlette.types import Scope

UNMATCHED_ROUTE = "<unmatched>"


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


def route_patterns(app: Any) -> list[tuple[re.Pattern[str], str]]:
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
    patterns = route_patterns(scope.get("app"))
    routed = getattr(scope.get("route"), "path", None)
    if routed is not None and any(template == routed for _, template in patterns):
        return str(routed)
    path = app_path(scope)
    for regex, template in patterns:
        if regex.match(path):
            return template
    return UNMATCHED_ROUTE
