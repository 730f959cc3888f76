"""``customerLimit``: the top customers of a summary's breakdown, and the rest summed.

The invoice and payment summaries count rows by customer name: with ten thousand
customers that is ~300 KB a dashboard does not need for a top-ten list. With
``customerLimit=N`` the breakdown holds the N customers with the most rows (ties by
name), largest first, and ``otherCustomers`` sums the rest: how many customers and how
many rows. The breakdowns are counts of rows (each currency's rows count one each), so
"the rest" adds counts only; no amount of one currency is ever added to another's.

Without the parameter the response is unchanged (no ``otherCustomers``). The limit is
applied to the full summary after the cache (cache.py), so the full and the limited
views share one cached computation and agree exactly.
"""

from __future__ import annotations

from typing import Any, cast

from pydantic import Field, create_model

from pivotal_reporting.reports.base import Report, ReportFilters
from pivotal_reporting.schema_base import CamelModel

# report_type → the breakdown by customer name that ``customerLimit`` trims.
CUSTOMER_BREAKDOWNS = {
    "invoice_settlement_time": "invoicesByCustomer",
    "payments_received": "paymentsByCustomer",
}
REST_FIELD = "otherCustomers"
MAX_CUSTOMER_LIMIT = 10_000
LIMIT_DESCRIPTION = (
    "Return only the N customers with the most rows in the by-customer breakdown "
    "(largest first, ties by name) and `otherCustomers` summing the rest; the whole "
    "breakdown when omitted."
)


class OtherCustomers(CamelModel):
    """The customers left out of a breakdown trimmed by ``customerLimit``, summed."""

    customers: int = Field(description="How many customers are left out (0 when none).")
    count: int = Field(
        description="How many rows they have: invoices or payments, every currency counted "
        "(a count, never an amount: no currencies are added together). With the top "
        "entries it adds up to the whole breakdown."
    )


REST_DESCRIPTION = (
    "Only with `customerLimit`: the customers beyond the limit, summed (absent otherwise)."
)


def summary_query_model(report: Report[Any]) -> type[ReportFilters]:
    """The summary endpoint's query model: the report's filters, plus ``customerLimit``
    for a report with a customer breakdown (never an export filter)."""
    if report.report_type not in CUSTOMER_BREAKDOWNS:
        return report.filters_model
    model = create_model(
        f"{report.filters_model.__name__}Query",
        __base__=report.filters_model,
        customer_limit=(
            int | None,
            Field(default=None, ge=1, le=MAX_CUSTOMER_LIMIT, description=LIMIT_DESCRIPTION),
        ),
    )
    return cast("type[ReportFilters]", model)


def split_query(report: Report[Any], query: ReportFilters) -> tuple[ReportFilters, int | None]:
    """The report's own filters (as given) and the customer limit of a summary query."""
    limit = getattr(query, "customer_limit", None)
    if type(query) is report.filters_model:
        return query, limit
    given = query.model_dump(exclude={"customer_limit"}, exclude_unset=True)
    return report.filters_model.model_validate(given), limit


def without_rest(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary as computed: ``otherCustomers`` is only ever set by ``limit_customers``."""
    if summary.get(REST_FIELD, 0) is None:
        del summary[REST_FIELD]
    return summary


def limit_customers(
    report: Report[Any], summary: dict[str, Any], limit: int | None
) -> dict[str, Any]:
    """A copy of ``summary`` with its customer breakdown trimmed to ``limit`` (or itself)."""
    field = CUSTOMER_BREAKDOWNS.get(report.report_type)
    if limit is None or field is None:
        return summary
    ranked = sorted(summary[field].items(), key=lambda item: (-item[1], item[0]))
    rest = ranked[limit:]
    return {
        **summary,
        field: dict(ranked[:limit]),
        REST_FIELD: {"customers": len(rest), "count": sum(n for _, n in rest)},
    }
