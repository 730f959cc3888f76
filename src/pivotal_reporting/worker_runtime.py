"""What queue tasks get from the worker process that runs them.

Tasks receive ids only; their database pool, export storage and settings come from the
:class:`WorkerRuntime` that :mod:`pivotal_reporting.worker` passes in procrastinate's
``additional_context``. It lives below every package with tasks (exports, retention,
reports), so none of them imports another to reach it.
"""

from __future__ import annotations

from dataclasses import dataclass

from procrastinate import JobContext

from pivotal_reporting.config import Settings
from pivotal_reporting.db import Database
from pivotal_reporting.storage import ExportStorage

RUNTIME_KEY = "worker_runtime"


@dataclass
class WorkerRuntime:
    """What tasks need in a worker process."""

    database: Database
    storage: ExportStorage
    settings: Settings
    stalled_after_seconds: float = 30.0


def runtime_of(context: JobContext) -> WorkerRuntime:
    """The runtime of the worker running this job (``RuntimeError`` outside one)."""
    runtime = context.additional_context.get(RUNTIME_KEY)
    if not isinstance(runtime, WorkerRuntime):
        raise RuntimeError("queue tasks need a worker started by pivotal_reporting.worker")
    return runtime
