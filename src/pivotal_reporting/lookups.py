"""``GET /v1/lookups/{customers|projects|users}``: type-ahead for the dashboard's pickers.

Tenant-scoped like every read (row-level security and the organization condition);
``q`` matches anywhere in the name, case-insensitively; ``name`` matches exactly (the
dashboard turns a clicked top-list name into the ids that select its rows).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import AfterValidator
from sqlalchemy import text

from pivotal_reporting.auth.dependencies import get_database, require
from pivotal_reporting.auth.principal import VIEW_REPORTS, Principal
from pivotal_reporting.db import Database
from pivotal_reporting.errors import problem_responses
from pivotal_reporting.rls import ORG_SETTING
from pivotal_reporting.schema_base import CamelModel
from pivotal_reporting.validation import check_text

router = APIRouter(prefix="/v1/lookups", tags=["lookups"])

LookupKind = Literal["customers", "projects", "users"]
_NAME_COLUMN = {"customers": "name", "projects": "name", "users": "display_name"}


class LookupItem(CamelModel):
    id: str
    name: str


class LookupPage(CamelModel):
    items: list[LookupItem]


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _search_text(value: str) -> str:
    """Empty, or text PostgreSQL can hold (no NUL or other control character)."""
    return check_text(value) if value else value


SearchText = Annotated[str, AfterValidator(_search_text)]


@router.get(
    "/{kind}",
    response_model=LookupPage,
    summary="Find customers, projects or users",
    responses=problem_responses(401, 403, 422, 429, 503),
)
async def lookup(
    kind: LookupKind,
    principal: Annotated[Principal, Depends(require(VIEW_REPORTS))],
    database: Annotated[Database, Depends(get_database)],
    q: Annotated[SearchText, Query(max_length=100, description="Part of the name.")] = "",
    name: Annotated[SearchText | None, Query(max_length=300, description="The exact name.")] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> LookupPage:
    column = _NAME_COLUMN[kind]
    condition = f"{column} = :name" if name is not None else f"{column} ILIKE :pattern"
    sql = text(
        f"SELECT id, {column} AS name FROM {kind} "  # noqa: S608 -- reviewed: constants only, values are bound
        f"WHERE organization_id = {ORG_SETTING} AND {condition} "
        f"ORDER BY {column}, id LIMIT :limit"
    )
    params = {"name": name, "pattern": f"%{_escape_like(q)}%", "limit": limit}
    async with database.tenant_session(principal.organization_id) as session:
        rows = (await session.execute(sql, params)).all()
    return LookupPage(items=[LookupItem(id=row.id, name=row.name) for row in rows])
