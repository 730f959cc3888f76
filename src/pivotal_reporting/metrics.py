"""Every Prometheus metric, in one module, named as in the specification."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from pivotal_reporting.config import get_settings

REPORT_GENERATED = Counter(
    "pivotal_report_generated_total",
    "Summary reports generated.",
    ["report_type", "organization_id"],
)
REPORT_DURATION = Histogram(
    "pivotal_report_generation_duration_seconds",
    "Time to compute a summary report (SLO: p95 <= 0.25 s).",
    ["report_type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0),
)
READ_SNAPSHOTS = Counter(
    "pivotal_read_snapshots_total",
    "Tenant snapshot reads (summaries, export COPY, audit listings) by the server that "
    "answered: replica (pg_is_in_recovery() of the connection) or primary.",
    ["server"],
)
READ_REPLICA_UNUSABLE = Counter(
    "pivotal_read_replica_unusable_total",
    "Reads the replica could not answer (then the primary answered or the request got "
    "503, by PIVOTAL_READ_FALLBACK), by reason: unreachable, lagging, not_ready, replaying.",
    ["reason"],
)
EXPORT_STARTED = Counter(
    "pivotal_export_started_total",
    "Export jobs started by a worker.",
    ["report_type", "format", "organization_id"],
)
EXPORT_COMPLETED = Counter(
    "pivotal_export_completed_total",
    "Export jobs completed.",
    ["report_type", "format", "organization_id"],
)
EXPORT_FAILED = Counter(
    "pivotal_export_failed_total",
    "Export jobs failed.",
    ["report_type", "format", "organization_id", "error_type"],
)
EXPORT_CANCELLED = Counter(
    "pivotal_export_cancelled_total",
    "Export jobs cancelled by their owner (once per job, whether pending or running).",
    ["report_type", "format", "organization_id"],
)
EXPORT_DURATION_MS = Histogram(
    "pivotal_export_duration_ms",
    "Export job duration from start to completion, in milliseconds (SLO: p95 <= 120000).",
    ["report_type", "format", "organization_id"],
    buckets=(
        100,
        250,
        500,
        1000,
        2500,
        5000,
        10000,
        30000,
        60000,
        90000,
        120000,
        180000,
        300000,
        600000,
    ),
)
EXPORT_QUEUE_WAIT = Histogram(
    "pivotal_export_queue_wait_seconds",
    "Time an export job waited in the queue before a worker picked it up (SLO: p95 <= 30 s).",
    ["report_type"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 120, 300),
)
VALIDATION_ERRORS = Counter(
    "pivotal_data_validation_errors_total",
    "Requests rejected for invalid input (SLO: 0 in production traffic from our own clients).",
    ["route"],
)
HTTP_REQUESTS = Counter(
    "pivotal_http_requests_total",
    "HTTP requests by route template, method and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "pivotal_http_request_duration_seconds",
    "HTTP request duration by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def org_label(organization_id: str) -> str:
    """The ``organization_id`` label value, or ``*`` when the label is switched off."""
    return organization_id if get_settings().metrics_org_label else "*"
