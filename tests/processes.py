"""Real ``pivotal-reporting`` processes for tests: start, wait until ready, stop, kill.

Each process writes its stdout and stderr (``serve`` and the workers log JSON lines to
stderr) to its own file; :meth:`ProcessGroup.tails` prints the end of every file when a
test fails. A :class:`ProcessGroup` stops every process it started when its ``with``
block ends, however it ends, so a failing test leaves no process behind. Where util-linux's
``setpriv`` exists, each process also gets ``SIGKILL`` from the kernel if the test process
itself dies (``--pdeathsig``), the last net against orphans.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

from tests.server import free_port

CLI = str(Path(sys.executable).parent / "pivotal-reporting")
STOP_TIMEOUT_SECONDS = 30.0


def _launcher() -> list[str]:
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


@dataclass
class ManagedProcess:
    """One ``pivotal-reporting`` subprocess and the file its output goes to."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]
    port: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def base_url(self) -> str:
        assert self.port is not None, f"{self.name} serves no HTTP"
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 40) -> str:
        self.log_file.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Until ``GET /health/ready`` answers 200 (fails at once if the process exits)."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(
                    f"{self.name} exited with {self.popen.returncode} before it was ready:\n"
                    + self.tail()
                )
            try:
                response = httpx.get(f"{self.base_url}/health/ready", timeout=5)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise AssertionError(f"{self.name} not ready after {timeout} s ({last}):\n{self.tail()}")

    def wait_for_log(self, needle: str, timeout: float = 60.0) -> None:
        """Until ``needle`` appears in the process's output (e.g. a worker's start line)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.log_file.flush()
            if needle in self.log_path.read_text(errors="replace"):
                return
            if not self.alive():
                break
            time.sleep(0.2)
        raise AssertionError(f"{self.name} never logged {needle!r}:\n{self.tail()}")

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout`` s; the exit code."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log_file.close()
        return self.popen.wait()

    def freeze(self) -> None:
        """SIGSTOP: the process runs no code until :meth:`thaw` (or is killed frozen)."""
        self.popen.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.popen.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye (a crashed machine, an OOM kill)."""
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=STOP_TIMEOUT_SECONDS)


@dataclass
class ProcessGroup:
    """Every process a test starts; all are stopped when the ``with`` block ends."""

    log_dir: Path
    env: Mapping[str, str]
    processes: list[ManagedProcess] = field(default_factory=list)

    def start(
        self,
        name: str,
        args: list[str],
        *,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
    ) -> ManagedProcess:
        log_path = self.log_dir / f"{name}.log"
        log_file = log_path.open("ab")
        popen = subprocess.Popen(
            [*_launcher(), CLI, *args],
            env=dict(os.environ) | dict(self.env) | dict(env or {}),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        process = ManagedProcess(name, popen, log_path, log_file, port)
        self.processes.append(process)
        return process

    def start_api(self, name: str, *, env: Mapping[str, str] | None = None) -> ManagedProcess:
        """``pivotal-reporting serve`` on a free loopback port (not waited for: see
        :meth:`ManagedProcess.wait_ready`, so that several can start at once)."""
        port = free_port()
        args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
        return self.start(name, args, env=env, port=port)

    def start_worker(
        self,
        name: str,
        *,
        concurrency: int = 2,
        heartbeat: float = 1.0,
        stalled_after: float = 4.0,
        env: Mapping[str, str] | None = None,
    ) -> ManagedProcess:
        """``pivotal-reporting worker`` with a short heartbeat, so a killed one is noticed."""
        args = [
            "worker",
            "--name",
            name,
            "--concurrency",
            str(concurrency),
            "--heartbeat",
            str(heartbeat),
            "--stalled-after",
            str(stalled_after),
        ]
        return self.start(name, args, env=env)

    def tails(self, lines: int = 40) -> str:
        parts = []
        for process in self.processes:
            state = "running" if process.alive() else f"exited {process.popen.returncode}"
            parts.append(f"----- {process.name} (pid {process.pid}, {state}) -----")
            with contextlib.suppress(OSError, ValueError):
                parts.append(process.tail(lines))
        return "\n".join(parts)

    def stop_all(self) -> None:
        """SIGTERM to every process at once, then wait for each (SIGKILL past the timeout)."""
        for process in self.processes:
            if process.alive():
                with contextlib.suppress(ProcessLookupError):
                    process.popen.send_signal(signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.stop()
            except Exception as exc:  # keep stopping the others
                print(f"could not stop {process.name} (pid {process.pid}): {exc!r}")

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if exc_type is not None:
                print(f"\nprocess logs (tails) after {exc_type.__name__}:\n{self.tails()}")
        finally:
            self.stop_all()
