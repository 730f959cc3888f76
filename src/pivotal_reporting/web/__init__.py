"""The dashboard: a small single-page application served by the API process.

``GET /`` is one HTML page (``templates/index.html``) with a JSON boot block built here
from the API's own schemas — each report's filter schema (its enums become the status
and method controls), its summary schema (field descriptions are the definitions shown
on hover) and the export formats the API accepts — so the pages cannot drift from the
API. The assets under ``static/`` are plain ES modules and CSS written by hand (no build
step, nothing fetched from the internet). The browser then calls the same ``/v1`` API
with the session cookie (``auth/sessions.py``).
"""

from __future__ import annotations

import json
import typing
from functools import lru_cache
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from pivotal_reporting import __version__
from pivotal_reporting.exports.schemas import ExportCreateBase
from pivotal_reporting.reports import registry

_PACKAGE = resources.files(__name__)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def export_formats() -> list[str]:
    """Every format ``POST /v1/reports/export`` accepts (the schema's ``format`` enum)."""
    annotation = ExportCreateBase.model_fields["format"].annotation
    return [str(value) for value in typing.get_args(annotation)]


def boot_data(provider_signin: bool = False) -> dict[str, Any]:
    """``provider_signin``: an OpenID Connect issuer is configured (docs/oidc.md)."""
    reports = [
        {
            "type": report.report_type,
            "path": report.path,
            "title": report.title,
            "filters": report.filters_model.model_json_schema(by_alias=True),
            "summary": report.summary_model.model_json_schema(by_alias=True),
        }
        for report in registry.all_reports()
    ]
    return {
        "version": __version__,
        "exportFormats": export_formats(),
        "reports": reports,
        "providerSignIn": provider_signin,
    }


@lru_cache(maxsize=2)
def index_html(provider_signin: bool = False) -> str:
    template = (_PACKAGE / "templates" / "index.html").read_text(encoding="utf-8")
    boot = json.dumps(boot_data(provider_signin), separators=(",", ":")).replace("<", "\\u003c")
    return template.replace("{{BOOT}}", boot).replace("{{VERSION}}", __version__)


def mount(app: FastAPI) -> None:
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }

    async def index(request: Request) -> HTMLResponse:
        provider_signin = bool(request.app.state.settings.oidc_issuer)
        return HTMLResponse(index_html(provider_signin), headers=headers)

    for path in ("/", "/reports/{page}", "/exports", "/audit"):
        app.add_api_route(path, index, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=str(_PACKAGE / "static")), name="static")
