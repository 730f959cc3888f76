"""The report catalog: ``report_type`` → the one instance that computes it.

Adding a report is one module and one line here (docs/adding-a-report.md); the summary routes and the export
engine both read this mapping.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from pivotal_reporting.reports.base import Report
from pivotal_reporting.reports.invoice_settlement_time import ROLLUP as INVOICE_ROLLUP
from pivotal_reporting.reports.invoice_settlement_time import InvoiceSettlementTimeReport
from pivotal_reporting.reports.payments_received import ROLLUP as PAYMENT_ROLLUP
from pivotal_reporting.reports.payments_received import PaymentsReceivedReport
from pivotal_reporting.reports.quote_cycle_time import ROLLUP as QUOTE_ROLLUP
from pivotal_reporting.reports.quote_cycle_time import QuoteCycleTimeReport
from pivotal_reporting.reports.rollups import Rollup
from pivotal_reporting.reports.time_approvals import ROLLUP as TIME_ROLLUP
from pivotal_reporting.reports.time_approvals import TimeApprovalsReport

REPORTS: MappingProxyType[str, Report[Any]] = MappingProxyType(
    {
        report.report_type: report
        for report in (
            QuoteCycleTimeReport(),
            InvoiceSettlementTimeReport(),
            PaymentsReceivedReport(),
            TimeApprovalsReport(),
        )
    }
)

# The rollups (reports/rollups/) that ``refresh_rollups`` maintains.
ROLLUPS: tuple[Rollup, ...] = (QUOTE_ROLLUP, INVOICE_ROLLUP, PAYMENT_ROLLUP, TIME_ROLLUP)


def get_report(report_type: str) -> Report[Any]:
    """The report registered as ``report_type``; ``LookupError`` when there is none."""
    try:
        return REPORTS[report_type]
    except KeyError:
        raise LookupError(f"unknown report type {report_type!r}") from None


def all_reports() -> tuple[Report[Any], ...]:
    """Every registered report, in registration order."""
    return tuple(REPORTS.values())
