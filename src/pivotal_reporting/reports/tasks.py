"""The periodic rollup refresh on the queue (every minute by default: ``rollup_cron``).

The schedule comes from the settings of the worker that runs it: the worker registers it
when it starts (:func:`pivotal_reporting.worker.periodic_schedule`). Procrastinate defers each tick once and the queueing lock keeps at most one waiting, so
one worker refreshes at a time; concurrent refreshes would be safe anyway (each
organization and report is rebuilt under an advisory lock).
"""

from __future__ import annotations

from procrastinate import JobContext

from pivotal_reporting.queue import queue_app
from pivotal_reporting.reports.refresh import refresh_all
from pivotal_reporting.worker_runtime import runtime_of

ROLLUP_QUEUE = "maintenance"
PERIODIC_ID = "rollups"


@queue_app.task(
    name="reports.refresh_rollups",
    queue=ROLLUP_QUEUE,
    pass_context=True,
    queueing_lock="rollups",
)
async def refresh_report_rollups(context: JobContext, timestamp: int) -> None:
    """Rebuild the months whose source rows changed since their last build."""
    await refresh_all(runtime_of(context).database)
