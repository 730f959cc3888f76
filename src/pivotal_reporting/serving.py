"""How ``serve`` runs uvicorn: its port bound first, forwarding headers trusted only from
configured proxies, and a clean exit (status 0) on SIGTERM and SIGINT.

uvicorn re-raises the signal that stopped it once it has shut down; with the default
SIGTERM disposition that kills the process (status 143) before ``atexit`` handlers run,
which left the embedded PostgreSQL behind. ``run_until_stopped`` turns that re-raised
signal into a normal return, so the caller's cleanup always runs.

``serve --workers N`` (or ``PIVOTAL_API_WORKERS``) runs N API processes on the one bound
port under uvicorn's supervisor (``run_workers``, below).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from pivotal_reporting.config import Settings


class PortUnavailable(Exception):
    """The API port cannot be bound (another server on it, or no permission)."""


class _StopRequested(Exception):
    pass


def bind_listener(host: str, port: int) -> socket.socket:
    """Bind ``host:port`` now, before anything else starts; ``PortUnavailable`` if taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortUnavailable(
            f"cannot listen on {host}:{port}: {exc.strerror}. Another server "
            "(perhaps another pivotal-reporting serve) is using it: stop it, or pass --port."
        ) from exc
    return sock


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's forwarding-header options: trust no proxy unless some are configured.

    uvicorn otherwise trusts ``X-Forwarded-For`` from 127.0.0.1 (or ``$FORWARDED_ALLOW_IPS``),
    so any local process could choose the client address the rate limiter keys on.
    """
    trusted = settings.forwarded_allow_ips.strip()
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or "127.0.0.1"}


def uvicorn_config(app: Any, settings: Settings, *, host: str, port: int) -> uvicorn.Config:
    # log_config=None: keep our JSON logging. access_log=False: the middleware writes the
    # access lines (route templates); uvicorn's would repeat them with raw query strings.
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        log_config=None,
        access_log=False,
        # Open dashboard event streams would otherwise hold a shutdown for up to a minute.
        timeout_graceful_shutdown=5,
        **proxy_options(settings),
    )


def _request_stop(signum: int, frame: FrameType | None) -> None:
    raise _StopRequested(signum)


def run_until_stopped(config: uvicorn.Config, listener: socket.socket) -> None:
    """Serve on ``listener`` until SIGTERM or SIGINT; return normally after shutdown."""
    previous = {
        signum: signal.signal(signum, _request_stop) for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        uvicorn.Server(config).run(sockets=[listener])
    except _StopRequested:
        pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        listener.close()


# --- Several API processes (serve --workers N) -------------------------------------
#
# The parent binds the port (above), then uvicorn's supervisor spawns N processes that
# all accept on that one listener, each building the app through ``worker_app`` (a
# factory, imported afresh in each spawned process). What they share comes through the
# environment: the database URL the parent resolved, and a fresh run directory holding
# the prometheus_client multiprocess files (every process writes its samples there, and
# ``/metrics`` in any process aggregates them all) and the lock that lets exactly one
# process run the in-process export worker.

WORKER_APP = "pivotal_reporting.serving:worker_app"
DATABASE_URL_ENV = "PIVOTAL_SERVE_DATABASE_URL"
RUN_DIR_ENV = "PIVOTAL_SERVE_RUN_DIR"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
EXPORT_WORKER_LOCK = "export-worker.lock"
WORKER_HEALTHCHECK_SECONDS = 60

_export_worker_lock: int | None = None  # held for the life of the process that won it


def prepare_workers(database_url: str) -> Path:
    """A fresh run directory for the API processes, announced through the environment.

    Call before anything imports ``pivotal_reporting.metrics`` in a process that serves
    metrics: prometheus_client picks its mode when the metrics are created.
    """
    run_dir = Path(tempfile.mkdtemp(prefix="pivotal-serve-"))
    metrics_dir = run_dir / "metrics"
    metrics_dir.mkdir()
    os.environ[RUN_DIR_ENV] = str(run_dir)
    os.environ[MULTIPROC_ENV] = str(metrics_dir)
    os.environ[DATABASE_URL_ENV] = database_url
    return run_dir


def run_workers(
    settings: Settings, *, host: str, port: int, listener: socket.socket, workers: int
) -> None:
    """Serve on ``listener`` from ``workers`` processes until SIGTERM or SIGINT (the
    supervisor stops them all and returns normally)."""
    config = uvicorn.Config(
        WORKER_APP,
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="info",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        # The supervisor kills a process that does not answer its ping in time (a thread
        # in each process answers), with its open requests. 5 s, uvicorn's default, is
        # short for a saturated machine.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        **proxy_options(settings),
    )
    try:
        Multiprocess(config, sockets=[listener]).run()
    finally:
        listener.close()


def cleanup_workers(run_dir: Path) -> None:
    shutil.rmtree(run_dir, ignore_errors=True)


def worker_app() -> Any:
    """The ASGI app of one API process (uvicorn factory, in each spawned process)."""
    from pivotal_reporting.app import create_app
    from pivotal_reporting.config import get_settings
    from pivotal_reporting.observability.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level)
    in_process = settings.worker_in_process and _claim_export_worker()
    return create_app(
        settings.model_copy(update={"worker_in_process": in_process}),
        database_url=os.environ[DATABASE_URL_ENV],
    )


def _claim_export_worker() -> bool:
    """Whether this process runs the export worker: the one holding the run directory's
    lock (a replacement for a process that died takes it over)."""
    global _export_worker_lock
    fd = os.open(Path(os.environ[RUN_DIR_ENV]) / EXPORT_WORKER_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    _export_worker_lock = fd
    return True
