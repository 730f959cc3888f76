"""Every refusal is audited: one handler for ``Forbidden``, wherever it is raised.

Routes, dependencies and services only raise ``Forbidden``; this handler writes the
``access_denied`` event (in its own transaction: the refused request's was rolled back)
for the authenticated caller, then renders the problem document as usual.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from pivotal_reporting.audit.service import record_event
from pivotal_reporting.auth.principal import Principal
from pivotal_reporting.db import Database
from pivotal_reporting.errors import Forbidden, render_app_error
from pivotal_reporting.route_templates import route_template

log = logging.getLogger(__name__)


async def audit_denial(request: Request, exc: Forbidden) -> None:
    """Append ``access_denied`` for the request's principal (none: nothing to attribute)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        return
    database: Database = request.app.state.database
    async with database.tenant_session(principal.organization_id) as session:
        await record_event(
            session,
            organization_id=principal.organization_id,
            user_id=principal.user_id,
            action="access_denied",
            resource="route",
            resource_id=route_template(request.scope),
            details={"method": request.method, "detail": exc.detail, **exc.audit_details},
        )


async def _forbidden(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Forbidden)
    try:
        await audit_denial(request, exc)
    except Exception:
        # The refusal stands even if the audit write fails; the failure is logged.
        log.exception("could not audit a denial on %s", request.url.path)
    return await render_app_error(request, exc)


def install_denial_audit(app: FastAPI) -> None:
    app.add_exception_handler(Forbidden, _forbidden)
