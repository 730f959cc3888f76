"""Serving the metrics to the scraper the operator configured, and to no one else.

The samples carry every organization's id, so ``GET /metrics`` on the API port needs
``Authorization: Bearer <PIVOTAL_METRICS_TOKEN>``; with no token configured it answers
404. A separate listener (``PIVOTAL_METRICS_PORT`` for ``serve``, ``--metrics-port`` for
workers) serves them without a token on ``PIVOTAL_METRICS_ADDR``, loopback by default.

With several processes on one host (uvicorn ``--workers``, gunicorn), set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory shared by them: every scrape then
aggregates all processes' samples from their files (prometheus_client multiprocess mode).
"""

from __future__ import annotations

import hmac
import logging
import os

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client import start_http_server as _start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

from pivotal_reporting.config import Settings
from pivotal_reporting.errors import NotFound, Unauthorized

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

router = APIRouter(tags=["operations"])


def metrics_registry() -> CollectorRegistry:
    """The registry to expose: all processes' files in multiprocess mode, else this process."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


NOT_SERVED_HERE = (
    "Metrics are not served on this port. Set PIVOTAL_METRICS_TOKEN to scrape them here "
    "with a bearer token, or PIVOTAL_METRICS_PORT for a separate loopback listener."
)


def require_scraper(settings: Settings, authorization: str | None) -> None:
    """Allow the configured scraper only: 404 when no token is set, 401 for a wrong one."""
    if settings.metrics_token is None:
        raise NotFound(NOT_SERVED_HERE)
    expected = f"Bearer {settings.metrics_token.get_secret_value()}".encode()
    if not hmac.compare_digest((authorization or "").encode(), expected):
        raise Unauthorized("The metrics scrape token is missing or wrong.")


@router.get(
    "/metrics",
    summary="Prometheus metrics (scrape token required; never rate limited)",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}},
        401: {"description": "PIVOTAL_METRICS_TOKEN is set and the bearer token is not it"},
        404: {"description": "No PIVOTAL_METRICS_TOKEN: metrics are not served on this port"},
    },
)
def read_metrics(request: Request) -> Response:
    # A sync route: collecting may read many files in multiprocess mode, off the event loop.
    require_scraper(request.app.state.settings, request.headers.get("authorization"))
    return Response(generate_latest(metrics_registry()), media_type=CONTENT_TYPE_LATEST)


def start_metrics_server(port: int, addr: str = "127.0.0.1") -> None:
    """Expose this process's metrics on ``addr:port`` from a daemon thread (workers)."""
    _start_http_server(port, addr=addr, registry=metrics_registry())
    log.info("metrics server listening", extra={"fields": {"port": port, "addr": addr}})
