"""The one place routers are mounted."""

from __future__ import annotations

from fastapi import FastAPI

from pivotal_reporting import health
from pivotal_reporting.auth import endpoints as identity


def mount_routers(app: FastAPI) -> None:
    app.include_router(health.router)
    app.include_router(identity.router)
