"""``pivotal-reporting login-link``: a one-time link that signs the user in."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from tests.factories import Tenant
from tests.server import TEST_JWT_SECRET, ServerThread


def _cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PIVOTAL_DATABASE_URL": database_url, "PIVOTAL_JWT_SECRET": TEST_JWT_SECRET}
    return subprocess.run(
        [sys.executable, "-m", "pivotal_reporting", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_login_link_signs_the_user_in_once(
    api_server: ServerThread, tenant: Tenant, database_url: str
) -> None:
    result = _cli(
        "login-link",
        "--user",
        tenant.exporter.id,
        "--base-url",
        api_server.base_url,
        database_url=database_url,
    )
    assert result.returncode == 0, result.stderr
    link = result.stdout.strip()
    assert link.startswith(f"{api_server.base_url}/signin?code={tenant.org.id}.")
    with httpx.Client() as browser:
        assert browser.get(link).headers["location"] == "/"
        me = browser.get(f"{api_server.base_url}/v1/me").json()
        assert me["user"]["id"] == tenant.exporter.id
    with httpx.Client() as second:
        assert second.get(link).headers["location"] == "/?signin=failed"


def test_login_link_refuses_an_unknown_user(database_url: str) -> None:
    result = _cli("login-link", "--user", "usr_nobody_here", database_url=database_url)
    assert result.returncode == 1
    assert "no active user" in result.stderr
