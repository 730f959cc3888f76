"""The periodic retention sweep on the queue (hourly by default: ``retention_cron``).

Every worker registers the schedule from its settings when it starts
(:func:`pivotal_reporting.worker.periodic_schedule`); procrastinate defers each tick once,
so exactly one worker runs a given sweep, and the sweep itself is safe if two ever overlap.
"""

from __future__ import annotations

from procrastinate import JobContext

from pivotal_reporting.queue import queue_app
from pivotal_reporting.retention.service import run_retention
from pivotal_reporting.worker_runtime import runtime_of

RETENTION_QUEUE = "maintenance"
PERIODIC_ID = "retention"


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
