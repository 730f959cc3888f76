"""How ``serve`` runs uvicorn: its port bound first, forwarding headers trusted only from
configured proxies, and a clean exit (status 0) on SIGTERM and SIGINT.

uvicorn re-raises the signal that stopped it once it has shut down; with the default
SIGTERM disposition that kills the process (status 143) before ``atexit`` handlers run,
which left the embedded PostgreSQL behind. ``run_until_stopped`` turns that re-raised
signal into a normal return, so the caller's cleanup always runs.
"""

from __future__ import annotations

import signal
import socket
from types import FrameType
from typing import Any

import uvicorn

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
