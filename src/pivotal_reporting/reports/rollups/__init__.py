"""Rollups: whole months and days of a window read pre-grouped, the rest from the rows.

A report's summary groups its window's rows into a few **facets** (histogram bins,
counts per project, ...), then adds the groups up. Those partial aggregates can be
computed once per local calendar **month** and per local **day** and stored
(``report_rollups``, migration 0007): a one-year window then reads twelve months of
groups (and the days of a partial month) plus the rows of its partial edge days,
instead of half a million rows.

- ``facets.py``: what a rollup is (a report's facets, their SQL, and which
  ``report_rollups`` column stores each domain-named column);
- ``request.py``: which periods of a window are fresh, and a facet's groups over it;
- ``build.py``: rebuilding stale periods (the periodic task, the CLI, the demo loader).
"""

from pivotal_reporting.reports.rollups.facets import Facet, Rollup, customers_facet, range_rows
from pivotal_reporting.reports.rollups.request import (
    RollupPlan,
    customer_counts_sql,
    facet_rows,
    filters_match,
    plan,
)

__all__ = [
    "Facet",
    "Rollup",
    "RollupPlan",
    "customer_counts_sql",
    "customers_facet",
    "facet_rows",
    "filters_match",
    "plan",
    "range_rows",
]
