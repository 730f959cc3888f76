"""Days outstanding and overdue of unpaid invoices as of an instant, from their groups.

The invoice summary's clock-free part (invoice_settlement_time.py, kept by the summary
cache) holds the unpaid invoices of the window grouped by ``status``, ``currency``,
``due_date`` and ``has_balance`` (balance_due > 0) per issue date, with ``midnight``,
the epoch of the instant that issue date's local day began (computed by PostgreSQL,
``sql.local_midnight_epoch``), ``n`` and ``balance``. ``outstanding_rows`` derives
from them, at each request, the rows the summary SQL would give for those invoices as
of ``asOf``: the same float8 arithmetic (``asOf - midnight`` seconds, bin
``floor(s / width)``), the same overdue rule, exact decimal balances. A few thousand
groups a year: milliseconds, no query.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

OPEN_STATUSES = frozenset({"issued", "part_paid"})


def outstanding_rows(
    groups: Iterable[Mapping[str, Any]],
    *,
    as_of_epoch: float,
    as_of_date: date,
    report_currency: str,
    width: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The bin rows (``bin, n, total, low, high, rows, overdue, overdue_amount, issued,
    part_paid, paid, written_off``; ``bin`` None for written-off invoices, which have no
    settlement time) and the overdue rows per currency (``kind`` 'overdue', ``key``,
    ``n``, ``amount``) of the unpaid ``groups`` as of the instant given.

    An invoice is overdue when it is open (issued, part paid), its due date is before
    ``as_of_date`` and it has a balance; overdue ones count as "overdue" instead of their
    status.
    """
    bins: dict[int | None, dict[str, Any]] = {}
    overdue: dict[str, dict[str, Any]] = {}
    for g in groups:
        n = int(g["n"])
        status = g["status"]
        seconds = as_of_epoch - g["midnight"] if status in OPEN_STATUSES else None
        index = None if seconds is None else math.floor(seconds / width)
        row = bins.get(index)
        if row is None:
            row = bins[index] = _empty_bin(index)
        row["rows"] += n
        if seconds is not None:
            row["n"] += n
            row["total"] += seconds * n
            row["low"] = seconds if row["low"] is None else min(row["low"], seconds)
            row["high"] = seconds if row["high"] is None else max(row["high"], seconds)
        currency = str(g["currency"]).strip()
        late = seconds is not None and g["due_date"] < as_of_date and g["has_balance"]
        if late:
            row["overdue"] += n
            if currency == report_currency:
                row["overdue_amount"] += g["balance"]
            late_here = overdue.setdefault(
                currency, {"kind": "overdue", "key": currency, "n": 0, "amount": Decimal(0)}
            )
            late_here["n"] += n
            late_here["amount"] += g["balance"]
        elif status in OPEN_STATUSES:
            row[status] += n
        else:
            row["written_off"] += n
    return list(bins.values()), [overdue[c] for c in sorted(overdue)]


def _empty_bin(index: int | None) -> dict[str, Any]:
    return {
        "bin": index,
        "n": 0,
        "total": 0.0,
        "low": None,
        "high": None,
        "rows": 0,
        "overdue": 0,
        "overdue_amount": Decimal(0),
        "issued": 0,
        "part_paid": 0,
        "paid": 0,
        "written_off": 0,
    }
