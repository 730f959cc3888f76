"""CLI commands that need no long-running server: token, migrate --check."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from tests.factories import Tenant
from tests.server import TEST_JWT_SECRET


def _cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PIVOTAL_DATABASE_URL": database_url, "PIVOTAL_JWT_SECRET": TEST_JWT_SECRET}
    return subprocess.run(
        [sys.executable, "-m", "pivotal_reporting", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_token_command_mints_a_working_token(
    client: httpx.Client, tenant: Tenant, database_url: str
) -> None:
    result = _cli(
        "token", "--user", tenant.viewer.id, "--expires-in", "60", database_url=database_url
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    response = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["user"]["id"] == tenant.viewer.id


def test_token_command_refuses_unknown_user(database_url: str) -> None:
    result = _cli("token", "--user", "usr_nobody_here", database_url=database_url)
    assert result.returncode == 1
    assert "no user" in result.stderr


def test_migrate_check_passes_at_head(database_url: str) -> None:
    result = _cli("migrate", "--check", database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert "migration head" in result.stdout


def test_token_command_refuses_a_lifetime_beyond_the_cap(tenant: Tenant, database_url: str) -> None:
    week = str(7 * 86_400)
    result = _cli(
        "token", "--user", tenant.viewer.id, "--expires-in", week, database_url=database_url
    )
    assert result.returncode == 2
    assert "PIVOTAL_JWT_MAX_LIFETIME_SECONDS (86400 s)" in result.stderr
    assert result.stdout == ""
