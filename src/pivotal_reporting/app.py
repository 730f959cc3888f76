"""``create_app()``: settings, database, error handlers, routers, lifespan."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from pivotal_reporting import __version__, schema
from pivotal_reporting.api import mount_routers
from pivotal_reporting.api_docs import install_docs
from pivotal_reporting.audit.denials import install_denial_audit
from pivotal_reporting.audit.provisioning import install_provisioning_audit
from pivotal_reporting.body_limit import BodyLimitMiddleware
from pivotal_reporting.config import Settings, get_settings
from pivotal_reporting.db import Database, resolve_database_url
from pivotal_reporting.errors import install_error_handlers
from pivotal_reporting.events.broker import running_broker
from pivotal_reporting.observability.middleware import RequestContextMiddleware
from pivotal_reporting.ratelimit.middleware import RateLimitMiddleware
from pivotal_reporting.replica import replica_policy
from pivotal_reporting.worker import in_process_worker


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """The operations middleware, in the one order that is correct.

    Starlette runs the last-added middleware first, so the request-context middleware
    (request id, access log, HTTP metrics) is added last: it sees every request, including
    the ones the rate limiter refuses, and it times them all.
    """
    app.add_middleware(BodyLimitMiddleware)  # innermost: after the rate limit
    app.add_middleware(RateLimitMiddleware, settings=settings)
    app.add_middleware(RequestContextMiddleware)  # outermost of ours


def create_app(settings: Settings | None = None, *, database_url: str | None = None) -> FastAPI:
    """The ASGI application. ``database_url`` overrides settings (the CLI resolves it once)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = database_url or resolve_database_url(settings)
        app.state.database = Database.connect(
            url, pool_size=settings.db_pool_size, replica=replica_policy(settings)
        )
        app.state.head_revision = schema.head_revision()
        try:
            async with AsyncExitStack() as stack:
                app.state.event_broker = await stack.enter_async_context(running_broker(url))
                if settings.worker_in_process:
                    await stack.enter_async_context(in_process_worker(url, settings))
                # Everything loaded so far lives as long as the process: out of the
                # collector's sight, a full collection after a 10,000-row summary no
                # longer walks it (it was the p95 tail of the large summaries).
                gc.freeze()
                yield
        finally:
            await app.state.database.dispose()

    app = FastAPI(
        title="Pivotal Flow Reporting",
        version=__version__,
        description="Compliance reporting: exact summaries and governed exports.",
        lifespan=lifespan,
        # Swagger UI from the package's own assets (api_docs.py), not from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_denial_audit(app)
    install_provisioning_audit(app)
    install_middleware(app, settings)
    mount_routers(app)
    install_docs(app)
    return app
