"""The API over real HTTP in tests: uvicorn serving the real app on a loopback port.

Also the settings every test server shares: its JWT secret, and a rollup schedule that
never fires during a run (the tests refresh rollups themselves; a worker refreshing every
minute would race their checks). Subprocess servers and workers get the same schedule
through ``PIVOTAL_ROLLUP_CRON`` in their environment.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

from pivotal_reporting.serving import proxy_options

TEST_JWT_SECRET = "test-secret-" + "x" * 40
TEST_METRICS_TOKEN = "test-metrics-token"
# What the test suite's scraper sends to GET /metrics on the API port.
METRICS_HEADERS = {"Authorization": f"Bearer {TEST_METRICS_TOKEN}"}
# Midnight on 1 January only.
QUIET_ROLLUP_CRON = "0 0 1 1 *"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerThread:
    """uvicorn serving the real app on a loopback port, in a background thread."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        # Forwarding headers trusted exactly as `serve` trusts them.
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            **proxy_options(app.state.settings),
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("API server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
