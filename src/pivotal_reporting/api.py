"""The one place routers are mounted."""

from __future__ import annotations

from fastapi import FastAPI

from pivotal_reporting import health, lookups, web
from pivotal_reporting.audit import endpoints as audit
from pivotal_reporting.auth import endpoints as identity
from pivotal_reporting.auth import oidc_signin
from pivotal_reporting.auth import session_endpoints as signin
from pivotal_reporting.events import endpoints as events
from pivotal_reporting.exports import endpoints as exports
from pivotal_reporting.observability import exposition
from pivotal_reporting.reports import endpoints as reports
from pivotal_reporting.templates import endpoints as templates


def mount_routers(app: FastAPI) -> None:
    app.include_router(health.router)
    app.include_router(exposition.router)
    app.include_router(identity.router)
    app.include_router(audit.router)
    app.include_router(exports.router)
    app.include_router(templates.router)
    app.include_router(reports.router)
    app.include_router(signin.router)
    app.include_router(oidc_signin.router)
    app.include_router(lookups.router)
    app.include_router(events.router)
    web.mount(app)
