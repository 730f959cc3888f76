"""``audit export``: JSON lines an auditor can verify offline by recomputing the chain."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.audit.audit_helpers import record_events
from tests.factories import Tenant
from tests.server import TEST_JWT_SECRET

GENESIS = "0" * 64


def _cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PIVOTAL_DATABASE_URL": database_url, "PIVOTAL_JWT_SECRET": TEST_JWT_SECRET}
    return subprocess.run(
        [sys.executable, "-m", "pivotal_reporting", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def verify_offline(lines: list[dict[str, Any]], anchor: str) -> None:
    """What an auditor runs: only hashlib and json, no access to the service."""
    previous_hash, previous_seq = anchor, None
    for line in lines:
        assert hashlib.sha256(line["payload"].encode("utf-8")).hexdigest() == line["hash"]
        content = json.loads(line["payload"])
        assert content["prev_hash"] == line["prev_hash"] == previous_hash
        assert content["seq"] == line["seq"]
        assert previous_seq is None or line["seq"] == previous_seq + 1
        for key in ("action", "user_id", "resource", "resource_id", "details", "organization_id"):
            assert content[key] == line[key]
        previous_hash, previous_seq = line["hash"], line["seq"]


def test_export_recomputes_offline(tenant: Tenant, database_url: str, tmp_path: Path) -> None:
    events = [
        {"user_id": tenant.admin.id, "action": "export_downloaded", "resource": "export_jobs",
         "resource_id": f"job_{i}", "details": {"bytes": i * 10, "name": "Überweisung"}}
        for i in range(5)
    ]  # fmt: skip
    record_events(database_url, tenant.org.id, events)
    output = tmp_path / "audit.jsonl"
    result = _cli(
        "audit", "export", "--org", tenant.org.id, "--from", "2000-01-01T00:00:00Z",
        "--to", "2999-01-01T00:00:00+00:00", "--output", str(output), database_url=database_url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3, 4, 5]
    verify_offline(lines, GENESIS)
    # A tampered line no longer verifies.
    lines[2]["payload"] = lines[2]["payload"].replace('"bytes":20', '"bytes":21')
    try:
        verify_offline(lines, GENESIS)
    except AssertionError:
        pass
    else:
        raise AssertionError("tampering went unnoticed")


def test_export_to_stdout_of_a_middle_range_anchors_on_the_previous_hash(
    tenant: Tenant, database_url: str
) -> None:
    record_events(
        database_url,
        tenant.org.id,
        [{"user_id": None, "action": "a", "resource": "r"} for _ in range(4)],
    )
    everything = _cli("audit", "export", "--org", tenant.org.id, database_url=database_url)
    assert everything.returncode == 0, everything.stderr
    lines = [json.loads(line) for line in everything.stdout.splitlines()]
    verify_offline(lines[2:], anchor=lines[1]["hash"])


def test_naive_datetime_is_refused(tenant: Tenant, database_url: str) -> None:
    result = _cli(
        "audit", "export", "--org", tenant.org.id, "--from", "2024-01-01T00:00:00",
        database_url=database_url,
    )  # fmt: skip
    assert result.returncode == 2
    assert "offset" in result.stderr
