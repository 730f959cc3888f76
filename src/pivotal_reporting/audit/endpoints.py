"""``GET /v1/audit-logs``: the caller's organization's audit trail, for auditors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from pivotal_reporting.audit.repository import AuditFilters, Order
from pivotal_reporting.audit.schemas import AuditLogPage
from pivotal_reporting.audit.service import read_audit_page
from pivotal_reporting.audit.verify import verify_chain
from pivotal_reporting.auth.dependencies import get_database, require
from pivotal_reporting.auth.principal import VIEW_AUDIT_LOGS, Principal
from pivotal_reporting.db import Database
from pivotal_reporting.errors import InvalidInput, problem_responses
from pivotal_reporting.schema_base import CamelModel
from pivotal_reporting.validation import FilterText, Id, Instant

router = APIRouter(prefix="/v1", tags=["audit"])

Auditor = Annotated[Principal, Depends(require(VIEW_AUDIT_LOGS))]


@router.get(
    "/audit-logs",
    response_model=AuditLogPage,
    summary="The organization's audit log, newest first, with its hash chain",
    responses=problem_responses(401, 403, 422, 429, 503),
)
async def read_audit_logs(
    principal: Auditor,
    database: Annotated[Database, Depends(get_database)],
    action: Annotated[FilterText | None, Query(max_length=100)] = None,
    user_id: Annotated[Id | None, Query(alias="userId")] = None,
    from_at: Annotated[Instant | None, Query(alias="from")] = None,
    to_at: Annotated[Instant | None, Query(alias="to")] = None,
    organization_id: Annotated[Id | None, Query(alias="organizationId")] = None,
    order: Order = "desc",
    cursor: Annotated[FilterText | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditLogPage:
    principal.ensure_own_organization(organization_id)
    if from_at is not None and to_at is not None and from_at >= to_at:
        raise InvalidInput(
            "'from' must be before 'to'.",
            errors=[{"field": "query.to", "message": "not after from"}],
        )
    filters = AuditFilters(action=action, user_id=user_id, from_at=from_at, to_at=to_at)
    async with database.tenant_session(principal.organization_id) as session:
        return await read_audit_page(
            session, principal.organization_id, filters, cursor=cursor, order=order, limit=limit
        )


class ChainVerificationRead(CamelModel):
    organization_id: str
    ok: bool
    rows_checked: int
    first_break_seq: int | None
    first_break_reason: str | None
    verified_at: datetime


@router.get(
    "/audit-logs/verification",
    response_model=ChainVerificationRead,
    summary="Recompute the organization's hash chain now: intact, or where it first breaks",
    responses=problem_responses(401, 403, 429, 503),
)
async def verify_audit_chain(
    principal: Auditor, database: Annotated[Database, Depends(get_database)]
) -> ChainVerificationRead:
    async with database.tenant_session(principal.organization_id, snapshot=True) as session:
        report = await verify_chain(session, principal.organization_id)
    brk = report.first_break
    return ChainVerificationRead(
        organization_id=principal.organization_id,
        ok=report.ok,
        rows_checked=report.rows_checked,
        first_break_seq=brk.seq if brk else None,
        first_break_reason=brk.reason if brk else None,
        verified_at=datetime.now(UTC),
    )
