"""Stopping ``serve`` stops the embedded PostgreSQL; a killed serve leaves nothing stuck.

Each test runs ``pivotal-reporting serve`` as a real process with its own data directory
on the embedded server, and looks at the postmaster's pid and the package's
``pg/.handle_pids.json`` from outside.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.server import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data dir outside pytest's basetemp: as root, the server runs as another user,
    and every pytest session resets ``/tmp/pytest-of-root`` to 0700 under its feet."""
    path = Path(tempfile.mkdtemp(prefix="pivotal-stop-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIVOTAL_")}
    return env | {"PIVOTAL_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}


def _cli(data_dir: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pivotal_reporting", *args],
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Serve:
    """``serve`` on a free port, its output in a file; ready once /health/ready is 200."""

    def __init__(self, data_dir: Path, *extra: str, port: int | None = None, **env: str) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.log = data_dir / f"serve-{self.port}-{time.monotonic_ns()}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pivotal_reporting", "serve", "--port", str(self.port), *extra],
            env=_env(data_dir) | env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log.read_text()

    def wait_ready(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                url = f"http://127.0.0.1:{self.port}/health/ready"
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise AssertionError("serve never became ready:\n" + self.output())

    def signal_and_wait(self, signum: int, timeout: float = 60) -> int:
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError("serve did not stop:\n" + self.output()) from None


def _postmaster(data_dir: Path) -> int:
    return int((data_dir / "pg" / "postmaster.pid").read_text().splitlines()[0])


def _holders(data_dir: Path) -> list[int]:
    path = data_dir / "pg" / ".handle_pids.json"
    return json.loads(path.read_text()) if path.exists() else []


def _gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_serve_and_its_database(data_dir: Path, signum: int) -> None:
    metrics_port = free_port()
    served = Serve(data_dir, PIVOTAL_METRICS_PORT=str(metrics_port))
    served.wait_ready()
    # The separate loopback listener serves the metrics; the API port does not.
    scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
    assert "pivotal_http_requests_total" in scraped.text
    assert httpx.get(f"http://127.0.0.1:{served.port}/metrics").status_code == 404
    postmaster = _postmaster(data_dir)
    assert _holders(data_dir) == [served.process.pid]
    assert served.signal_and_wait(signum) == 0, served.output()
    assert _gone(postmaster), f"PostgreSQL {postmaster} still runs after {signum!r}"
    assert _holders(data_dir) == []
    assert "Traceback" not in served.output()


def test_after_kill_9_db_stop_and_the_next_start_clean_up(data_dir: Path) -> None:
    first = Serve(data_dir)
    first.wait_ready()
    orphan = _postmaster(data_dir)
    first.process.kill()
    first.process.wait()
    assert not _gone(orphan, timeout=1), "PostgreSQL outlives a SIGKILLed serve"
    assert _holders(data_dir) == [first.process.pid]  # the dead pid is stuck

    # The next start adopts the orphan and stops it when it stops.
    second = Serve(data_dir)
    second.wait_ready()
    assert _postmaster(data_dir) == orphan
    assert _holders(data_dir) == [second.process.pid]
    assert second.signal_and_wait(signal.SIGTERM) == 0, second.output()
    assert _gone(orphan)

    # Or `db stop` stops the orphan outright.
    third = Serve(data_dir)
    third.wait_ready()
    orphan = _postmaster(data_dir)
    refused = _cli(data_dir, "db", "stop")  # serve still runs: refused
    assert refused.returncode == 1
    assert str(third.process.pid) in refused.stderr
    third.process.kill()
    third.process.wait()
    stopped = _cli(data_dir, "db", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped (pid {orphan})" in stopped.stdout
    assert _gone(orphan)
    assert _holders(data_dir) == []
    again = _cli(data_dir, "db", "stop")
    assert again.returncode == 0
    assert "no embedded PostgreSQL running" in again.stdout


def test_a_busy_port_fails_fast_before_printing_a_token(data_dir: Path) -> None:
    blocker = Serve(data_dir / "first")
    try:
        blocker.wait_ready()
        started = time.monotonic()
        second = _cli(data_dir / "second", "serve", "--demo", "--port", str(blocker.port))
        elapsed = time.monotonic() - started
        assert second.returncode == 1
        assert f"127.0.0.1:{blocker.port}" in second.stderr
        assert "in use" in second.stderr
        assert "bearer token" not in second.stdout + second.stderr
        assert "Bearer" not in second.stdout + second.stderr
        assert elapsed < 30, elapsed  # no database started, no hang in shutdown
        assert not (data_dir / "second" / "pg").exists()
    finally:
        assert blocker.signal_and_wait(signal.SIGTERM) == 0
