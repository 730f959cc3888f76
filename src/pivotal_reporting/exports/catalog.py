"""The report a job exports: looked up in the reports registry by ``report_type``."""

from __future__ import annotations

from pivotal_reporting.reports.base import Report


def get_report(report_type: str) -> Report:
    """The registered report for ``report_type`` (``LookupError`` if none)."""
    from pivotal_reporting.reports import registry  # the catalog imports every report module

    report: Report = registry.get_report(report_type)
    return report
