"""The periodic retention sweep on the queue (hourly by default: ``retention_cron``).

Every worker knows the schedule; procrastinate defers each tick once, so exactly one
worker runs a given sweep, and the sweep itself is safe if two ever overlap.
"""

from __future__ import annotations

from procrastinate import JobContext

from pivotal_reporting.config import get_settings
from pivotal_reporting.exports.tasks import runtime_of
from pivotal_reporting.queue import queue_app
from pivotal_reporting.retention.service import run_retention

RETENTION_QUEUE = "maintenance"


@queue_app.periodic(cron=get_settings().retention_cron, periodic_id="retention")
@queue_app.task(
    name="retention.sweep_export_retention",
    queue=RETENTION_QUEUE,
    pass_context=True,
    queueing_lock="retention",
)
async def sweep_export_retention(context: JobContext, timestamp: int) -> None:
    """Expire files, delete old job rows and orphan files (see ``retention.service``)."""
    runtime = runtime_of(context)
    await run_retention(runtime.database, runtime.storage)
