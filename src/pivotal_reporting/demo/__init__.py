"""Deterministic, realistic demo data, bulk-loaded with set-based SQL.

``pivotal-reporting demo-data`` calls :func:`load_demo_data`; ``serve --demo`` calls
:func:`ensure_demo_data`, then mints a token for :data:`DEMO_USER_ID`.
"""

from pivotal_reporting.demo.catalog import DEMO_ORG_ID, DEMO_USER_ID
from pivotal_reporting.demo.loader import ensure_demo_data, load_demo_data
from pivotal_reporting.demo.summary import DemoSummary, OrgCounts

__all__ = [
    "DEMO_ORG_ID",
    "DEMO_USER_ID",
    "DemoSummary",
    "OrgCounts",
    "ensure_demo_data",
    "load_demo_data",
]
