"""An idle worker keeps quiet at INFO (procrastinate's polling lines only at DEBUG)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pivotal_reporting import schema
from pivotal_reporting.db import with_database
from tests.server import TEST_JWT_SECRET

IDLE_SECONDS = 12  # the stalled-job sweeper runs every 5 s: at least two ticks


@pytest.fixture
def idle_database(admin_url: str) -> Iterator[str]:
    name = f"pivotal_idle_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(admin_url, name)
    schema.upgrade(url)
    yield url
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _start_worker(url: str, level: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIVOTAL_")} | {
        "PIVOTAL_DATABASE_URL": url,
        "PIVOTAL_JWT_SECRET": TEST_JWT_SECRET,
        "PIVOTAL_LOG_LEVEL": level,
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "pivotal_reporting", "worker", "--name", f"idle-{level}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _lines(log: Path) -> list[dict[str, object]]:
    parsed = []
    for raw in log.read_text().splitlines():
        if raw.startswith("{"):
            parsed.append(json.loads(raw))
    return parsed


def test_an_idle_worker_logs_no_procrastinate_lines_at_info(
    idle_database: str, tmp_path: Path
) -> None:
    # Both workers idle side by side on one database; the DEBUG one proves there was
    # procrastinate activity to hide.
    info_log, debug_log = tmp_path / "info.log", tmp_path / "debug.log"
    info = _start_worker(idle_database, "INFO", info_log)
    debug = _start_worker(idle_database, "DEBUG", debug_log)
    try:
        time.sleep(IDLE_SECONDS)
    finally:
        _stop(info)
        _stop(debug)
    at_info = _lines(info_log)
    chatter = [line for line in at_info if str(line["logger"]).startswith("procrastinate")]
    assert chatter == []
    assert len(at_info) <= 5, at_info  # startup and shutdown lines only
    at_debug = _lines(debug_log)
    assert any(str(line["logger"]).startswith("procrastinate") for line in at_debug)
