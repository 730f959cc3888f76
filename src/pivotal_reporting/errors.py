"""Error classes with a status code, rendered once as ``application/problem+json``.

Services raise these (never ``HTTPException``); one set of handlers turns them, and
every framework error, into RFC 9457 problem documents. No stack trace reaches a client.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import psycopg
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pivotal_reporting.metrics import VALIDATION_ERRORS
from pivotal_reporting.route_templates import route_template

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


# Pydantic prefixes the message of a ``ValueError`` raised in a validator with this.
_PYDANTIC_VALUE_ERROR_PREFIX = "Value error, "


def _clean_message(message: str) -> str:
    return message.removeprefix(_PYDANTIC_VALUE_ERROR_PREFIX)


def _clean_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Field errors as sent: pydantic's ``Value error, `` prefix removed from each message."""
    cleaned = []
    for error in errors:
        item = dict(error)
        if isinstance(item.get("message"), str):
            item["message"] = _clean_message(item["message"])
        cleaned.append(item)
    return cleaned


class ServiceUnavailable(AppError):
    """The database cannot be reached (restart, outage, pool exhausted): try again soon."""

    status_code = 503
    code = "service_unavailable"
    RETRY_AFTER_SECONDS = 5

    def __init__(self, detail: str = "The database is unavailable; please retry shortly.") -> None:
        super().__init__(detail, headers={"Retry-After": str(self.RETRY_AFTER_SECONDS)})


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
    415: "The body is not declared as JSON (`Content-Type: application/json`).",
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
        body["errors"] = _clean_errors(errors)
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_MEDIA_TYPE
    )


# A query string's unencoded ``+`` arrives as a space: ``...T00:00:00 02:00``.
_DECODED_PLUS_OFFSET = re.compile(r"\d{2}:\d{2}(:\d{2}(\.\d+)?)? \d{2}(:?\d{2})?$")
PLUS_AS_SPACE_MESSAGE = (
    "the offset's '+' was read as a space: in a query string, encode + as %2B "
    "(e.g. 2026-01-01T00:00:00%2B02:00)"
)


def _field_message(error: Mapping[str, Any]) -> str:
    value = error.get("input")
    if (
        error.get("loc", ("",))[0] == "query"
        and isinstance(value, str)
        and _DECODED_PLUS_OFFSET.search(value)
    ):
        return PLUS_AS_SPACE_MESSAGE
    return str(error.get("msg", "invalid value"))


def _printable(text: str) -> str:
    """``text`` safe to encode as UTF-8: a lone surrogate (from a JSON body) becomes ``\\udXXX``."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# The export body is a union tagged by ``reportType``: pydantic names the tag in the
# location (``body.payments_received.filters.toDate``). Body fields are camelCase, so a
# snake_case part right after ``body`` can only be that tag.
_UNION_TAG = re.compile(r"^[a-z]+(_[a-z]+)+$")


def _client_location(loc: Sequence[Any]) -> list[Any]:
    """The location as the client wrote it: no union tag, and filters named as ``filters.x``."""
    parts = list(loc)
    if len(parts) > 2 and parts[0] == "body" and isinstance(parts[1], str):
        if _UNION_TAG.match(parts[1]):
            parts = ["body", *parts[2:]]
        if parts[1] == "filters":
            parts = parts[1:]
    return parts


def field_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    """Pydantic errors as ``[{"field": "query.fromDate", "message": ...}]``, no input echoed.

    A field name can come from the client (an unknown key of a JSON object), so it is made
    encodable whatever it holds.
    """
    result = []
    for error in exc.errors():
        location = ".".join(str(part) for part in _client_location(error.get("loc", ())))
        message = _field_message(error)
        result.append({"field": _printable(location), "message": _printable(message)})
    return result


_JSON_MEDIA_TYPE = re.compile(r"^application/([\w.+-]+\+)?json\s*(;|$)", re.IGNORECASE)


def _body_is_not_json(request: Request, exc: RequestValidationError) -> bool:
    """A JSON body was expected (the error is about the whole body) but not declared as JSON.

    FastAPI reads a body as JSON only when ``Content-Type`` says so (a missing header
    included); any other body reaches the model as raw bytes and fails on ``body``.
    """
    if _JSON_MEDIA_TYPE.match(request.headers.get("content-type", "")):
        return False
    return any(
        tuple(error.get("loc", ())) == ("body",) and isinstance(error.get("input"), bytes)
        for error in exc.errors()
    )


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
    if _body_is_not_json(request, exc):
        return problem_response(
            415,
            "The request body must be JSON: send it with 'Content-Type: application/json'.",
            code="unsupported_media_type",
            instance=request.url.path,
        )
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
    if status == 404 and detail == HTTPStatus(404).phrase:
        detail = _unknown_path_detail(request)
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
    return problem_response(
        status, detail, code=code, instance=request.url.path, headers=exc.headers
    )


def _unknown_path_detail(request: Request) -> str:
    """For an unknown path, the valid paths beside it (e.g. every summary), if there are any.

    Walks up from the requested path to the nearest prefix of at least two segments
    (``/v1/reports/summary``, ``/v1/reports``) under which the API documents routes.
    """
    segments = request.url.path.rstrip("/").split("/")[1:]
    # The OpenAPI document (built once, then cached by FastAPI) lists the documented paths.
    documented = sorted(request.app.openapi().get("paths", {}))
    for depth in range(len(segments) - 1, 1, -1):
        prefix = "/" + "/".join(segments[:depth]) + "/"
        siblings = [path for path in documented if path.startswith(prefix)]
        if siblings:
            return f"No such path. The paths under {prefix} are: {', '.join(siblings)}."
    return "No such path; /docs lists the API."


async def _unhandled_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        500,
        "An internal error occurred; it has been logged.",
        code="internal_error",
        instance=request.url.path,
    )


def database_unavailable(exc: BaseException) -> bool:
    """Is ``exc`` the database being out of reach (not a bad statement)?

    A refused or dropped connection and PostgreSQL shutting down are psycopg
    ``OperationalError``s (a cancelled statement is one too, but not an outage); a pool
    that cannot hand out a connection in time is SQLAlchemy's ``TimeoutError``.
    """
    if isinstance(exc, sqlalchemy.exc.TimeoutError):
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig or exc
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if not database_unavailable(exc):
        return await _unhandled_error(request, exc)
    # One line, no traceback: an outage would otherwise bury the log in stack traces.
    log.warning(
        "database unavailable on %s %s: %s",
        request.method,
        request.url.path,
        str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
    )
    return await render_app_error(request, ServiceUnavailable())


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, render_app_error)
    # Registered by class (not only as Exception) so that Starlette's ExceptionMiddleware
    # answers them inside the request: the connection stays open and nothing is re-raised.
    for database_error in (sqlalchemy.exc.DBAPIError, sqlalchemy.exc.TimeoutError, psycopg.Error):
        app.add_exception_handler(database_error, _database_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled_error)
