"""Which export failures are worth retrying, and what a client may be told about them."""

from __future__ import annotations

import psycopg
from botocore.exceptions import ClientError as S3ClientError
from botocore.exceptions import ConnectionError as S3ConnectionError
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc

MAX_RETRIES = 5  # queue retries after the first run, with 2, 4, 8, 16, 32 s backoff

# SQLSTATE classes that describe the server or the connection, not the query:
# 08 connection, 40 transaction rollback (serialization, deadlock), 53 resources,
# 57 operator intervention (admin shutdown, crash recovery), 58 system error.
_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57", "58")


class TransientExportError(Exception):
    """Raised to the queue so that it retries the export with backoff."""


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        orig = getattr(current, "orig", None)
        current = (
            orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
        )
    return seen


def is_transient(exc: BaseException) -> bool:
    """A lost connection, a restarting server, a serialization failure: try again later."""
    for cause in _causes(exc):
        if isinstance(cause, sa_exc.DBAPIError) and cause.connection_invalidated:
            return True
        if isinstance(cause, psycopg.Error):
            state = cause.sqlstate
            if state and state[:2] in _TRANSIENT_SQLSTATE_CLASSES:
                return True
            if not state and isinstance(cause, psycopg.OperationalError | psycopg.InterfaceError):
                return True
        if isinstance(cause, ConnectionError | TimeoutError | S3ConnectionError):
            return True
        if isinstance(cause, S3ClientError) and _s3_server_side(cause):
            return True
    return False


def _s3_server_side(exc: S3ClientError) -> bool:
    """An S3 answer worth retrying: 5xx, throttling (SlowDown, 503), a request timeout."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    code = exc.response.get("Error", {}).get("Code", "")
    return status >= 500 or code in ("SlowDown", "RequestTimeout", "Throttling")


def error_type_of(exc: BaseException) -> str:
    """The ``error_type`` label of ``pivotal_export_failed_total``."""
    if isinstance(exc, ValidationError | LookupError):
        return "invalid_request"
    if is_transient(exc):
        return "retries_exhausted"
    if isinstance(exc, OSError):
        return "storage_error"
    return "processing_error"


def safe_error_message(exc: BaseException) -> str:
    """A message for ``error_message``: never SQL, paths or stack traces."""
    return {
        "invalid_request": "The export's filters are no longer valid for this report.",
        "retries_exhausted": "The database was unavailable; the export failed after several retries.",
        "storage_error": "The export file could not be written.",
    }.get(error_type_of(exc), "The export failed because of an internal error; it has been logged.")
