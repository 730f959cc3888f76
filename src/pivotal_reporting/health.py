"""Liveness and readiness: public routes, never rate limited."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from pivotal_reporting.db import Database
from pivotal_reporting.errors import problem_response

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness: the process answers")
async def liveness() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/health/ready",
    summary="Readiness: database reachable and migrations at head",
    responses={503: {"description": "Not ready", "content": {"application/problem+json": {}}}},
)
async def readiness(request: Request) -> JSONResponse:
    database: Database = request.app.state.database
    head: str | None = request.app.state.head_revision
    try:
        async with database.engine.connect() as conn:
            current = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except Exception:
        return problem_response(503, "The database is not reachable.", code="not_ready")
    if current != head:
        return problem_response(
            503, f"Migrations are not at head (database {current}, code {head}).", code="not_ready"
        )
    return JSONResponse({"status": "ready", "database": "ok", "migration": current})
