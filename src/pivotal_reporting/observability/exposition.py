"""Serving the metrics: ``GET /metrics`` on the API and a metrics port for workers.

With several processes on one host (uvicorn ``--workers``, gunicorn), set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory shared by them: every scrape then
aggregates all processes' samples from their files (prometheus_client multiprocess mode).
"""

from __future__ import annotations

import logging
import os

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client import start_http_server as _start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

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


@router.get(
    "/metrics",
    summary="Prometheus metrics (public, never rate limited)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def read_metrics() -> Response:
    # A sync route: collecting may read many files in multiprocess mode, off the event loop.
    return Response(generate_latest(metrics_registry()), media_type=CONTENT_TYPE_LATEST)


def start_metrics_server(port: int, addr: str = "0.0.0.0") -> None:
    """Expose this process's metrics on ``addr:port`` from a daemon thread (workers)."""
    _start_http_server(port, addr=addr, registry=metrics_registry())
    log.info("metrics server listening", extra={"fields": {"port": port, "addr": addr}})
