"""The queue worker: procrastinate's worker, supervised so that it never stays dead.

``serve`` runs one in-process (see ``app.py``); ``pivotal-reporting worker`` runs it
standalone, as many as wanted, on any machine sharing the database. When the worker
stops by itself (a dropped database connection stops procrastinate's listener) or
raises, it is logged and restarted with backoff (:class:`RestartBackoff`: doubling
from 0.5 s up to 30 s, back to 0.5 s once a run has stayed up for a minute); only
:meth:`SupervisedWorker.stop` ends it.

The periodic tasks (export sweeper, retention sweep, rollup refresh) are scheduled from
the worker's own settings each time it starts: :func:`periodic_schedule`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import procrastinate
from procrastinate.periodic import PeriodicRegistry

from pivotal_reporting.config import Settings
from pivotal_reporting.db import Database
from pivotal_reporting.errors import database_unavailable
from pivotal_reporting.exports import tasks as export_tasks
from pivotal_reporting.queue import queue_app
from pivotal_reporting.replica import replica_policy
from pivotal_reporting.reports import tasks as report_tasks
from pivotal_reporting.retention import tasks as retention_tasks
from pivotal_reporting.storage_backends import open_storage
from pivotal_reporting.worker_runtime import RUNTIME_KEY, WorkerRuntime

log = logging.getLogger(__name__)

MIN_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
HEALTHY_RUN_SECONDS = 60.0
SHUTDOWN_GRACE_SECONDS = 15.0


@dataclass
class RestartBackoff:
    """The delay before restarting a worker that ended: doubles while it keeps failing,
    and starts over once a run has lasted ``healthy_after`` seconds (one outage last
    week must not make every later restart wait the maximum)."""

    minimum: float = MIN_BACKOFF_SECONDS
    maximum: float = MAX_BACKOFF_SECONDS
    healthy_after: float = HEALTHY_RUN_SECONDS
    _next: float = field(init=False)

    def __post_init__(self) -> None:
        self._next = self.minimum

    def delay_after(self, ran_for: float) -> float:
        """Seconds to wait before the next start, for a run that lasted ``ran_for`` s."""
        if ran_for >= self.healthy_after:
            self._next = self.minimum
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return delay


def periodic_schedule(settings: Settings) -> PeriodicRegistry:
    """The periodic tasks and their crons for a worker started with ``settings``."""
    registry = PeriodicRegistry()  # type: ignore[no-untyped-call]
    schedule = [
        (export_tasks.sweep_stalled_exports, export_tasks.SWEEP_CRON, export_tasks.PERIODIC_ID),
        (
            retention_tasks.sweep_export_retention,
            settings.retention_cron,
            retention_tasks.PERIODIC_ID,
        ),
        (report_tasks.refresh_report_rollups, settings.rollup_cron, report_tasks.PERIODIC_ID),
    ]
    for task, cron, periodic_id in schedule:
        registry.register_task(task=task, cron=cron, periodic_id=periodic_id, configure_kwargs={})
    return registry


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int = 2
    name: str = "exports"
    heartbeat_seconds: float = 10.0
    stalled_after_seconds: float = 30.0
    polling_seconds: float = 2.0


class SupervisedWorker:
    """Runs procrastinate's worker until :meth:`stop`; restarts it whenever it ends."""

    def __init__(
        self,
        url: str,
        settings: Settings,
        options: WorkerOptions,
        *,
        backoff: RestartBackoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.settings = settings
        self.options = options
        self.backoff = backoff or RestartBackoff()
        self.clock = clock
        self.restarts = 0
        self._stopping = False
        self._current: asyncio.Task[None] | None = None

    async def run_forever(self) -> None:
        while not self._stopping:
            started = self.clock()
            self._current = asyncio.create_task(
                self._run_once(), name=f"worker {self.options.name}"
            )
            try:
                await self._current
                if self._stopping:
                    break
                failure = "stopped unexpectedly"
            except asyncio.CancelledError:
                if self._stopping:
                    break
                raise
            except Exception as exc:
                failure = f"died ({type(exc).__name__}: {str(exc).strip()})"
                # An outage is expected to heal: one line. Anything else: the traceback.
                if not database_unavailable(exc):
                    log.exception("export worker %s died", self.options.name)
            delay = self.backoff.delay_after(self.clock() - started)
            log.error(
                "export worker %s %s; restarting in %.1f s", self.options.name, failure, delay
            )
            self.restarts += 1
            await asyncio.sleep(delay)
        log.info("export worker %s stopped", self.options.name)

    def stop(self) -> None:
        """Ask the worker to finish (running jobs get a grace period) and not restart."""
        self._stopping = True
        if self._current is not None and not self._current.done():
            self._current.cancel()

    async def _run_once(self) -> None:
        options = self.options
        database = Database.connect(
            self.url,
            pool_size=options.concurrency + 2,
            replica=replica_policy(self.settings),
        )
        runtime = WorkerRuntime(
            database=database,
            storage=open_storage(self.settings),
            settings=self.settings,
            stalled_after_seconds=options.stalled_after_seconds,
        )
        # replace_connector, not with_connector: tasks (and the periodic deferrer) use the
        # job manager of the app they were declared on, so that app must hold the pool.
        connector = procrastinate.PsycopgConnector(
            conninfo=self.url, min_size=1, max_size=options.concurrency + 3
        )
        try:
            with queue_app.replace_connector(connector) as queue:
                # The worker reads the registry once, when its periodic deferrer starts.
                queue.periodic_registry = periodic_schedule(self.settings)
                async with queue.open_async():
                    await queue.run_worker_async(
                        name=options.name,
                        concurrency=options.concurrency,
                        install_signal_handlers=False,
                        additional_context={RUNTIME_KEY: runtime},
                        update_heartbeat_interval=options.heartbeat_seconds,
                        stalled_worker_timeout=options.stalled_after_seconds,
                        fetch_job_polling_interval=options.polling_seconds,
                        shutdown_graceful_timeout=SHUTDOWN_GRACE_SECONDS,
                    )
        finally:
            await database.dispose()


async def run_standalone(url: str, settings: Settings, options: WorkerOptions) -> None:
    """The ``worker`` command: run until SIGINT or SIGTERM."""
    worker = SupervisedWorker(url, settings, options)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, worker.stop)
    await worker.run_forever()


@asynccontextmanager
async def in_process_worker(url: str, settings: Settings) -> AsyncIterator[SupervisedWorker]:
    """``serve``'s worker: a supervised background task, stopped with the app."""
    worker = SupervisedWorker(
        url, settings, WorkerOptions(concurrency=settings.worker_concurrency, name="in-process")
    )
    task = asyncio.create_task(worker.run_forever(), name="export worker supervisor")
    try:
        yield worker
    finally:
        worker.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
