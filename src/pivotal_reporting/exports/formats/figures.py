"""A document's figures: the report's summary in the export's snapshot, flattened.

The XLSX Summary sheet and the PDF show the same figures the summary endpoint returns
for the same filters (``report.summarize``), computed in the snapshot the rows come
from. Each figure gets a one-line definition: the summary model's field description
where it has one, else the line here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from pivotal_reporting.exports.formats.base import ExportDocument
from pivotal_reporting.reports.breakdown_limit import without_rest
from pivotal_reporting.reports.service import TUNE_TRANSACTION

# One line per figure where the model's own description is missing or too terse.
DEFINITIONS: dict[str, str] = {
    "totalQuotes": "Quotes decided (accepted, rejected or expired) in the window.",
    "averageCycleTimeDays": "Mean days from a quote's creation to its decision.",
    "medianCycleTimeDays": "Median days from creation to decision.",
    "minCycleTimeDays": "Shortest days from creation to decision.",
    "maxCycleTimeDays": "Longest days from creation to decision.",
    "quotesByStatus": "Decided quotes by final status.",
    "quotesByProject": "Decided quotes by project name.",
    "cycleTimeDistribution": "Decided quotes by whole days from creation to decision.",
    "totalInvoices": "Invoices issued in the window (not draft or void).",
    "averageSettlementTimeDays": "Mean days from issue to payment (open ones: to now).",
    "medianSettlementTimeDays": "Median days from issue to payment (open ones: to now).",
    "minSettlementTimeDays": "Shortest days from issue to payment.",
    "maxSettlementTimeDays": "Longest days from issue to payment.",
    "overdueInvoices": "Open invoices past their due date, all currencies.",
    "overdueAmount": "Balance due of overdue invoices, in the report currency.",
    "asOf": "The instant that days outstanding and overdue refer to.",
    "invoicesByStatus": "Invoices by status; overdue ones counted as overdue.",
    "invoicesByCustomer": "Invoices by customer name.",
    "settlementTimeDistribution": "Paid and open invoices by whole days to settlement.",
    "totalsByCurrency": "Count and exact sum per currency (never added across currencies).",
    "overdueByCurrency": "Overdue count and balance due per currency.",
    "totalPayments": "Completed payments received in the window, all currencies.",
    "totalAmount": "Sum of completed payments in the report currency.",
    "averageAmount": "Mean completed payment in the report currency.",
    "currency": "The currency of the headline amounts.",
    "paymentsByMethod": "Completed payments by payment method.",
    "paymentsByMonth": "Completed payments by calendar month in the organization's zone.",
    "paymentsByCustomer": "Completed payments by customer name.",
    "amountDistribution": "Payments in the report currency by amount range.",
    "totalEntries": "Time entries worked in the window.",
    "totalHours": "Hours of those entries.",
    "billableHours": "Hours of billable entries.",
    "nonBillableHours": "Hours of non-billable entries.",
    "entriesByStatus": "Entries by status (draft, submitted, approved, rejected).",
    "hoursByStatus": "Hours by entry status.",
    "approvedEntries": "Approved entries (they have an approval time).",
    "averageApprovalTimeHours": "Mean hours from submission to approval.",
    "medianApprovalTimeHours": "Median hours from submission to approval.",
    "minApprovalTimeHours": "Shortest hours from submission to approval.",
    "maxApprovalTimeHours": "Longest hours from submission to approval.",
    "averageApprovalTimeDays": "Mean days from submission to approval.",
    "medianApprovalTimeDays": "Median days from submission to approval.",
    "minApprovalTimeDays": "Shortest days from submission to approval.",
    "maxApprovalTimeDays": "Longest days from submission to approval.",
    "approvalTimeDistribution": "Approved entries by whole days from submission to approval.",
    "pendingApprovals": "Submitted entries not yet approved or rejected.",
    "pendingHours": "Hours of the pending entries.",
    "averagePendingAgeDays": "Mean days pending entries have waited since submission.",
    "oldestPendingAgeDays": "Days the oldest pending entry has waited.",
    "hoursByProject": "Hours by project name.",
    "hoursByUser": "Hours by user display name.",
}


@dataclass(frozen=True)
class Figure:
    """One value of the summary: ``key`` is its JSON path, e.g. ``paymentsByMethod.cash``."""

    key: str
    value: Any  # int, Decimal, str, None (or a datetime for asOf)
    definition: str


async def summary_in_snapshot(document: ExportDocument) -> dict[str, Any]:
    """The summary object (camelCase keys, Python values) in the export's snapshot."""
    # The rows' snapshot, imported on the server that exported it (primary or replica),
    # through the one tenant door.
    async with document.database.tenant_session(
        document.context.organization_id,
        snapshot=True,
        snapshot_id=document.snapshot_id,
        replica=document.snapshot_on_replica,
    ) as session:
        await session.execute(text(TUNE_TRANSACTION))
        summary = await document.report.summarize(session, document.context, document.filters)
    # As the summary endpoint answers without customerLimit (no otherCustomers).
    return without_rest(summary.model_dump(by_alias=True))


def definition(report_model: Any, key: str) -> str:
    """The one-line definition of the top-level figure ``key``."""
    if key in DEFINITIONS:
        return DEFINITIONS[key]
    for name, field in report_model.model_fields.items():
        if (field.alias or name) == key and field.description:
            return str(field.description)
    return ""


def flatten(summary: dict[str, Any], report_model: Any) -> Iterator[Figure]:
    """Every leaf figure: ``a``, ``a.key``, ``a.key.count``, ``a.<range>.percentage``.

    Distributions (lists of buckets) are keyed by their range label.
    """
    for key, value in summary.items():
        text = definition(report_model, key)
        yield from _leaves(key, value, text)


def _leaves(path: str, value: Any, text: str) -> Iterator[Figure]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _leaves(f"{path}.{key}", inner, text)
    elif isinstance(value, list):
        for bucket in value:
            label = bucket["range"]
            yield Figure(f"{path}.{label}.count", bucket["count"], text)
            yield Figure(f"{path}.{label}.percentage", bucket["percentage"], text)
    else:
        yield Figure(path, value, text)


def is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)
