"""Error classes with a status code, rendered once as ``application/problem+json``.

Services raise these (never ``HTTPException``); one set of handlers turns them, and
every framework error, into RFC 9457 problem documents. No stack trace reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pivotal_reporting.metrics import VALIDATION_ERRORS
from pivotal_reporting.observability.middleware import route_template

log = logging.getLogger(__name__)


def _count_validation_error(request: Request) -> None:
    """Every 422 counts towards the data-validation SLO, labelled by route template."""
    VALIDATION_ERRORS.labels(route=route_template(request.scope)).inc()


PROBLEM_MEDIA_TYPE = "application/problem+json"


class AppError(Exception):
    """A domain error that maps to one HTTP status."""

    status_code: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.headers = dict(headers) if headers else {}


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, detail: str = "A valid bearer token is required.") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="pivotal-reporting"'})


class Forbidden(AppError):
    """A refusal; ``audit_details`` go into the ``access_denied`` audit event."""

    status_code = 403
    code = "forbidden"

    def __init__(self, detail: str, *, audit_details: Mapping[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.audit_details = dict(audit_details or {})


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class Gone(AppError):
    status_code = 410
    code = "gone"


class InvalidInput(AppError):
    status_code = 422
    code = "validation_error"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


class TooManyRequests(AppError):
    status_code = 429
    code = "rate_limited"


# A request body larger than this is refused with 413 before it is parsed (body_limit.py).
MAX_BODY_BYTES = 64 * 1024

_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem document.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_PROBLEM_DESCRIPTIONS = {
    400: "The body could not be parsed (e.g. JSON nested too deep).",
    401: "No valid bearer token.",
    403: "The token lacks the permission, or names another organization.",
    404: "No such resource in your organization.",
    409: "Conflicts with the resource's state (or an Idempotency-Key's earlier body).",
    410: "The resource has expired.",
    413: f"The request body is larger than {MAX_BODY_BYTES} bytes.",
    422: "Invalid input; `errors` names each field.",
    429: "Rate limit exceeded; see Retry-After.",
    503: "Temporarily unavailable; see Retry-After.",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` documenting each status as an ``application/problem+json``."""
    return {
        status: {
            "description": _PROBLEM_DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_SCHEMA}},
        }
        for status in statuses
    }


def problem_response(
    status: int,
    detail: str,
    *,
    code: str,
    instance: str | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://pivotal-flow.dev/problems/{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = list(errors)
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_MEDIA_TYPE
    )


def _printable(text: str) -> str:
    """``text`` safe to encode as UTF-8: a lone surrogate (from a JSON body) becomes ``\\udXXX``."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def field_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    """Pydantic errors as ``[{"field": "query.fromDate", "message": ...}]``, no input echoed.

    A field name can come from the client (an unknown key of a JSON object), so it is made
    encodable whatever it holds.
    """
    result = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error.get("loc", ()))
        message = str(error.get("msg", "invalid value"))
        result.append({"field": _printable(location), "message": _printable(message)})
    return result


async def render_app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    if exc.status_code == 422:
        _count_validation_error(request)
    return problem_response(
        exc.status_code,
        exc.detail,
        code=exc.code,
        instance=request.url.path,
        errors=exc.errors,
        headers=exc.headers,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    _count_validation_error(request)
    errors = field_errors(exc)
    fields = ", ".join(sorted({e["field"] for e in errors}))
    return problem_response(
        422,
        f"Invalid request: {fields}.",
        code="validation_error",
        instance=request.url.path,
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
    return problem_response(
        status, detail, code=code, instance=request.url.path, headers=exc.headers
    )


async def _unhandled_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        500,
        "An internal error occurred; it has been logged.",
        code="internal_error",
        instance=request.url.path,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, render_app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled_error)
