"""``/metrics`` in multiprocess mode and the worker's metrics port."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys
    from prometheus_client import generate_latest
    from pivotal_reporting import metrics
    from pivotal_reporting.observability.exposition import metrics_registry

    metrics.EXPORT_COMPLETED.labels("payments_received", "csv", "org_mp").inc()
    if sys.argv[1] == "expose":
        sys.stdout.write(generate_latest(metrics_registry()).decode())
    """
)


def _python(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_multiprocess_mode_aggregates_every_process(tmp_path: Path) -> None:
    env = os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    _python("count", env=env)  # another process of the same server, already gone
    exposed = _python("expose", env=env)
    line = 'pivotal_export_completed_total{format="csv",organization_id="org_mp",report_type="payments_received"} 2.0'
    assert line in exposed


def test_metrics_server_for_workers() -> None:
    import httpx

    from pivotal_reporting.observability.exposition import start_metrics_server
    from tests.server import free_port

    port = free_port()
    start_metrics_server(port, addr="127.0.0.1")
    response = httpx.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    assert "pivotal_export_started_total" in response.text
