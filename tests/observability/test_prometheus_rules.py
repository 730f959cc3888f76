"""The shipped rules and dashboard: promtool passes them, and they name only real metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from pivotal_reporting import metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "rules.yml"
RULE_TESTS = DEPLOY / "prometheus" / "rules.test.yml"
DASHBOARD = DEPLOY / "grafana" / "pivotal-reporting-slo.json"

METRIC_NAME = re.compile(r"\bpivotal_[a-z0-9_]+")
RECORDED_NAME = re.compile(r"\bpivotal:[a-z0-9_:]+")
ALERTS = {
    "ExportJobFailureRate",
    "SlowExportJobs",
    "SlowReportGeneration",
    "SlowExportQueue",
    "DataValidationErrors",
}


def exposed_series_names() -> set[str]:
    """Every series name ``metrics.py`` can expose (``_total``, ``_bucket``, ...)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            names.update(f"{value._name}{suffix}" for suffix in suffixes[value._type])
    return names


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def _promtool(*args: str) -> str:
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (apt-get install prometheus; .ci/run does it)")
    result = subprocess.run(["promtool", *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_promtool_check_rules() -> None:
    assert "SUCCESS" in _promtool("check", "rules", str(RULES))


def test_promtool_unit_tests_pass() -> None:
    assert "SUCCESS" in _promtool("test", "rules", str(RULE_TESTS))


def test_every_slo_alert_is_defined_and_unit_tested() -> None:
    alerts = {rule["alert"] for rule in _rules() if "alert" in rule}
    assert alerts == ALERTS
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    tested = [case["alertname"] for test in tests for case in test.get("alert_rule_test", [])]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case["exp_alerts"]
    }
    assert set(tested) == ALERTS
    assert fired == ALERTS, "each alert has a case where it fires (and others where it does not)"


def test_export_p95_aggregates_buckets() -> None:
    recorded = {rule["record"]: rule["expr"] for rule in _rules() if "record" in rule}
    assert (
        recorded["pivotal:export_duration_seconds:p95_5m"]
        == "histogram_quantile(0.95, sum by (le) (rate(pivotal_export_duration_ms_bucket[5m]))) / 1000"
    )


def test_rules_and_dashboard_reference_only_existing_metrics() -> None:
    exposed = exposed_series_names()
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    expressions = [rule["expr"] for rule in _rules()] + _dashboard_exprs()
    for expr in expressions:
        unknown = set(METRIC_NAME.findall(expr)) - exposed
        assert not unknown, f"{expr!r} names metrics that metrics.py does not define: {unknown}"
        unrecorded = set(RECORDED_NAME.findall(expr)) - recorded
        assert not unrecorded, f"{expr!r} names recording rules that rules.yml lacks: {unrecorded}"


def test_dashboard_covers_every_slo() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"]
    assert dashboard["title"]
    joined = "\n".join(_dashboard_exprs())
    for name in (
        "pivotal:export_success_ratio:rate5m",
        "pivotal:export_duration_seconds:p95_5m",
        "pivotal:report_generation_duration_seconds:p95_5m",
        "pivotal:export_queue_wait_seconds:p95_5m",
        "pivotal_data_validation_errors_total",
    ):
        assert name in joined
