"""Days outstanding and overdue of unpaid invoices as of an instant, from their groups.

The invoice summary's clock-free part (invoice_settlement_time.py, kept by the summary
cache) holds the window's unpaid invoices (issued, part paid, written off) as
``UnpaidInvoices``: open ones counted per ``midnight`` (the epoch of the instant their
issue date's local day began, computed by PostgreSQL, ``sql.local_midnight_epoch``),
open ones with a balance per due date, currency and status (count and balance), and the
written-off count. ``rows`` derives from them, at each request, the rows the summary
SQL would give for those invoices as of ``asOf``: the same float8 arithmetic (``asOf -
midnight`` seconds, bin ``floor(s / width)``), the same overdue rule (open, due before
``asOf``'s local date, a balance left), exact decimal balances. A few hundred days and
due dates a year: well under a millisecond per request, no query.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

OPEN_STATUSES = ("issued", "part_paid")


@dataclass(frozen=True)
class UnpaidInvoices:
    """The unpaid invoices of a summary, grouped by what their clock figures depend on."""

    open_by_day: list[tuple[float, int]]  # (midnight epoch, open invoices issued that day)
    open_by_status: dict[str, int]  # issued, part_paid
    # (due date, currency, status, count, balance) of open invoices with a balance
    with_balance: list[tuple[date, str, str, int, Decimal]]
    written_off: int
    # (as-of date, report currency) → what is overdue then: computed once per day asked
    # (a cached part is asked many times a day), never changed after.
    _overdue: dict[tuple[date, str], _Overdue] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def from_groups(cls, groups: Iterable[Mapping[str, Any]]) -> UnpaidInvoices:
        """From rows of two kinds (invoice_settlement_time._unpaid_rows): ``day``
        (``status, midnight, n``: every unpaid invoice once) and ``due`` (``status,
        currency, due_date, n, balance``: the open ones with a balance once); any
        grouping at least that fine."""
        by_day: dict[float, int] = defaultdict(int)
        by_status: dict[str, int] = dict.fromkeys(OPEN_STATUSES, 0)
        due: dict[tuple[date, str, str], list[Any]] = {}
        written_off = 0
        for g in groups:
            n = int(g["n"])
            status = g["status"]
            if g["kind"] == "due":
                key = (g["due_date"], str(g["currency"]).strip(), status)
                entry = due.setdefault(key, [0, Decimal(0)])
                entry[0] += n
                entry[1] += g["balance"]
            elif status not in OPEN_STATUSES:
                written_off += n
            else:
                by_day[g["midnight"]] += n
                by_status[status] += n
        return cls(
            open_by_day=sorted(by_day.items()),
            open_by_status=by_status,
            with_balance=[(*key, n, balance) for key, (n, balance) in sorted(due.items())],
            written_off=written_off,
        )

    def rows(
        self, *, as_of_epoch: float, as_of_date: date, report_currency: str, width: int
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The bin rows (``bin, n, total, low, high``; one more row, ``bin`` None, with
        the counts ``rows, overdue, overdue_amount, issued, part_paid, paid,
        written_off``) and the overdue rows per currency (``kind`` 'overdue', ``key``,
        ``n``, ``amount``) as of the instant given. Overdue invoices count as "overdue"
        instead of their status."""
        bins: dict[int, dict[str, Any]] = {}
        for midnight, n in self.open_by_day:
            seconds = as_of_epoch - midnight
            index = math.floor(seconds / width)
            row = bins.get(index)
            if row is None:
                bins[index] = {
                    "bin": index,
                    "n": n,
                    "total": seconds * n,
                    "low": seconds,
                    "high": seconds,
                }
            else:
                row["n"] += n
                row["total"] += seconds * n
                row["low"] = min(row["low"], seconds)
                row["high"] = max(row["high"], seconds)
        counts: dict[str, Any] = {
            "bin": None,
            "n": 0,
            "rows": sum(self.open_by_status.values()) + self.written_off,
            "overdue": 0,
            "overdue_amount": Decimal(0),
            **self.open_by_status,
            "paid": 0,
            "written_off": self.written_off,
        }
        late = self._overdue.get((as_of_date, report_currency))
        if late is None:
            late = self._overdue_on(as_of_date, report_currency)
            self._overdue[(as_of_date, report_currency)] = late
        counts["overdue"] = late.count
        counts["overdue_amount"] = late.amount
        for status, n in late.by_status.items():
            counts[status] -= n
        bin_rows = [{**_NO_COUNTS, **row} for row in bins.values()]
        return [*bin_rows, counts], [dict(row) for row in late.rows]

    def _overdue_on(self, as_of_date: date, report_currency: str) -> _Overdue:
        """The open invoices with a balance due before ``as_of_date``: how many, their
        balance in ``report_currency``, how many of each status, and the rows per currency
        (``kind`` 'overdue', ``key``, ``n``, ``amount``)."""
        count, amount = 0, Decimal(0)
        by_status: dict[str, int] = defaultdict(int)
        overdue: dict[str, dict[str, Any]] = {}
        for due_date, currency, status, n, balance in self.with_balance:
            if not due_date < as_of_date:
                break  # ordered by due date
            count += n
            by_status[status] += n
            if currency == report_currency:
                amount += balance
            late = overdue.setdefault(
                currency, {"kind": "overdue", "key": currency, "n": 0, "amount": Decimal(0)}
            )
            late["n"] += n
            late["amount"] += balance
        rows = tuple(overdue[c] for c in sorted(overdue))
        return _Overdue(count, amount, dict(by_status), rows)


@dataclass(frozen=True)
class _Overdue:
    count: int
    amount: Decimal
    by_status: dict[str, int]
    rows: tuple[dict[str, Any], ...]


# The counts columns of a bin row (they are all in the one row with ``bin`` None).
_NO_COUNTS = {
    "rows": 0,
    "overdue": 0,
    "overdue_amount": None,
    "issued": 0,
    "part_paid": 0,
    "paid": 0,
    "written_off": 0,
}
