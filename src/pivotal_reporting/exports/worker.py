"""The export worker: procrastinate's worker, supervised so that it never stays dead.

``serve`` runs one in-process (see ``app.py``); ``pivotal-reporting worker`` runs it
standalone, as many as wanted, on any machine sharing the database. When the worker
stops by itself (a dropped database connection stops procrastinate's listener) or
raises, it is logged and restarted with backoff; only :meth:`SupervisedWorker.stop`
ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import procrastinate

from pivotal_reporting.config import Settings
from pivotal_reporting.db import Database
from pivotal_reporting.exports.storage_backends import open_storage
from pivotal_reporting.exports.tasks import RUNTIME_KEY, ExportRuntime
from pivotal_reporting.queue import queue_app

log = logging.getLogger(__name__)

MIN_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
SHUTDOWN_GRACE_SECONDS = 15.0


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int = 2
    name: str = "exports"
    heartbeat_seconds: float = 10.0
    stalled_after_seconds: float = 30.0
    polling_seconds: float = 2.0


class SupervisedWorker:
    """Runs procrastinate's worker until :meth:`stop`; restarts it whenever it ends."""

    def __init__(self, url: str, settings: Settings, options: WorkerOptions) -> None:
        self.url = url
        self.settings = settings
        self.options = options
        self.restarts = 0
        self._stopping = False
        self._current: asyncio.Task[None] | None = None

    async def run_forever(self) -> None:
        backoff = MIN_BACKOFF_SECONDS
        while not self._stopping:
            self._current = asyncio.create_task(
                self._run_once(), name=f"worker {self.options.name}"
            )
            try:
                await self._current
                if self._stopping:
                    break
                log.error("export worker %s stopped unexpectedly; restarting", self.options.name)
            except asyncio.CancelledError:
                if self._stopping:
                    break
                raise
            except Exception:
                log.exception(
                    "export worker %s died; restarting in %.1f s", self.options.name, backoff
                )
            self.restarts += 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        log.info("export worker %s stopped", self.options.name)

    def stop(self) -> None:
        """Ask the worker to finish (running jobs get a grace period) and not restart."""
        self._stopping = True
        if self._current is not None and not self._current.done():
            self._current.cancel()

    async def _run_once(self) -> None:
        options = self.options
        database = Database.connect(self.url, pool_size=options.concurrency + 2)
        runtime = ExportRuntime(
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
