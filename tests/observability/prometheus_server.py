"""A real ``prometheus`` server on a loopback port, scraping the test API and a worker."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules.yml"


class PrometheusServer:
    """``prometheus`` with a generated config; stopped (and its TSDB discarded) on exit."""

    def __init__(
        self,
        workdir: Path,
        port: int,
        targets: dict[str, str],
        bearer_tokens: dict[str, str] | None = None,
    ) -> None:
        """``bearer_tokens``: job name → the scrape token that job's target wants."""
        self.port = port
        self.workdir = workdir
        tokens = bearer_tokens or {}
        scrape_configs: list[dict[str, Any]] = []
        for job, target in targets.items():
            scrape: dict[str, Any] = {"job_name": job, "static_configs": [{"targets": [target]}]}
            if job in tokens:  # as in docs/operations-metrics.md
                token_file = workdir / f"{job}.token"
                token_file.write_text(tokens[job])
                scrape["authorization"] = {"type": "Bearer", "credentials_file": str(token_file)}
            scrape_configs.append(scrape)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": scrape_configs,
        }
        self.config_file = workdir / "prometheus.yml"
        self.config_file.write_text(yaml.safe_dump(config))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> PrometheusServer:
        binary = shutil.which("prometheus")
        assert binary, "prometheus is not installed"
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={self.config_file}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.workdir / "prometheus.log").open("wb"),
        )
        self._wait(lambda: httpx.get(f"{self.base_url}/-/ready").status_code == 200, 30)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.base_url}/api/v1/query", params={"query": promql})
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def targets_up(self) -> dict[str, str]:
        active = httpx.get(f"{self.base_url}/api/v1/targets").json()["data"]["activeTargets"]
        return {target["labels"]["job"]: target["health"] for target in active}

    def _wait(self, ready: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                log = (self.workdir / "prometheus.log").read_text()
                raise RuntimeError(f"prometheus exited: {log[-2000:]}")
            try:
                if ready():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError("prometheus did not become ready")
