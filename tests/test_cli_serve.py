"""The README's promise, end to end: `serve --demo` answers, and its printed curl works.

Both database paths: an existing PostgreSQL via PIVOTAL_DATABASE_URL, and the embedded
PostgreSQL under a fresh data directory (started, then reused on the next start).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from pivotal_reporting.db import with_database
from pivotal_reporting.demo import DEMO_ORG_ID, DEMO_USER_ID
from tests.server import free_port

pytestmark = pytest.mark.slow


class Served:
    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pivotal_reporting",
                "serve",
                "--demo",
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []

    def wait_for_curl_line(self, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                break
            self.output.append(line)
            if line.strip().startswith("curl "):
                return line.strip()
        raise AssertionError("serve printed no curl line:\n" + "".join(self.output))

    def wait_for_signin_link(self, timeout: float = 60) -> str:
        """The dashboard link printed after the curl line (the README's first command)."""
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            self.output.append(line)
            if "/signin?code=" in line:
                return line.strip()
        raise AssertionError("serve printed no sign-in link:\n" + "".join(self.output))

    def wait_ready(self, timeout: float = 60) -> httpx.Response:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"http://127.0.0.1:{self.port}/health/ready", timeout=2)
                if response.status_code == 200:
                    return response
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError("service never became ready:\n" + "".join(self.output))

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def _run_curl(line: str) -> dict[str, object]:
    result = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    body: dict[str, object] = json.loads(result.stdout)
    return body


def _base_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIVOTAL_")}
    return env | {"PIVOTAL_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def fresh_database(admin_url: str) -> Iterator[str]:
    name = f"pivotal_serve_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield with_database(admin_url, name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _assert_identity(body: dict[str, object]) -> None:
    user, organization = body["user"], body["organization"]
    assert isinstance(user, dict)
    assert isinstance(organization, dict)
    assert user["id"] == DEMO_USER_ID
    assert organization["id"] == DEMO_ORG_ID
    assert "reports.export_reports" in str(body["permissions"])


def test_serve_demo_against_database_url(tmp_path: Path, fresh_database: str) -> None:
    served = Served(_base_env(tmp_path) | {"PIVOTAL_DATABASE_URL": fresh_database})
    try:
        curl = served.wait_for_curl_line()
        link = served.wait_for_signin_link()
        assert served.wait_ready().json()["status"] == "ready"
        _assert_identity(_run_curl(curl))
        # The link opens the dashboard signed in as the demo admin.
        with httpx.Client() as browser:
            assert browser.get(link).status_code == 303
            _assert_identity(browser.get(f"http://127.0.0.1:{served.port}/v1/me").json())
            page = browser.get(f"http://127.0.0.1:{served.port}/")
            assert page.status_code == 200
            assert "/static/app.js" in page.text
    finally:
        assert served.stop() == 0, "".join(served.output)
    # The embedded server was never started on this path.
    assert not (tmp_path / "pg").exists()


def test_serve_demo_on_embedded_postgres_reuses_its_data_dir(tmp_path: Path) -> None:
    first = Served(_base_env(tmp_path))
    try:
        curl = first.wait_for_curl_line()
        first.wait_ready()
        _assert_identity(_run_curl(curl))
    finally:
        assert first.stop() == 0, "".join(first.output)
    assert (tmp_path / "pg" / "PG_VERSION").read_text().strip() == "18"

    second = Served(_base_env(tmp_path))
    try:
        second.wait_for_curl_line()
        second.wait_ready()
        # The first run's token still works: same data dir, same secret, same demo rows.
        _assert_identity(_run_curl(curl.replace(f":{first.port}/", f":{second.port}/")))
    finally:
        assert second.stop() == 0, "".join(second.output)
    assert re.search(r"bearer token", "".join(second.output))
