"""The documented export columns of each report, their kinds, and ``columns`` choices.

Every report's export has a fixed list of columns (its ``export.columns``, base.py). Each column
has a *kind* that the typed formats (XLSX, Parquet) use to type its cells:

======== ============================== =============================== ================
kind     PostgreSQL                     Parquet (Arrow)                 XLSX cell
======== ============================== =============================== ================
text     text / varchar / char          string                          text, never a formula
money    NUMERIC(15,2)                  decimal(15,2) + ``currency``    number, currency format
days     NUMERIC (4 decimals)           decimal(18,4)                   number ``0.0000``
hours    NUMERIC (2 decimals)           decimal(18,2)                   number ``0.00``
instant  timestamptz                    timestamp[us, UTC]              date-time in the org's zone
date     date                           date32                          date
bool     boolean                        bool                            TRUE/FALSE
======== ============================== =============================== ================

An export may name ``columns``: a subset of these, in the order wanted. A money column
travels with its ``currency`` column (an amount without its currency is ambiguous), so
choosing one without the other is refused, like an unknown name.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Literal

from psycopg import sql

from pivotal_reporting.errors import InvalidInput
from pivotal_reporting.reports.base import ExportQuery

ColumnKind = Literal["text", "money", "days", "hours", "instant", "date", "bool"]

_T: ColumnKind = "text"
_M: ColumnKind = "money"
_D: ColumnKind = "days"
_H: ColumnKind = "hours"
_I: ColumnKind = "instant"
_DT: ColumnKind = "date"
_B: ColumnKind = "bool"

_KINDS: dict[str, dict[str, ColumnKind]] = {
    "quote_cycle_time": {
        "quote_id": _T,
        "quote_number": _T,
        "customer_id": _T,
        "customer_name": _T,
        "project_id": _T,
        "project_name": _T,
        "status": _T,
        "currency": _T,
        "total_amount": _M,
        "created_at": _I,
        "sent_at": _I,
        "decided_at": _I,
        "cycle_time_days": _D,
    },
    "invoice_settlement_time": {
        "invoice_id": _T,
        "invoice_number": _T,
        "customer_id": _T,
        "customer_name": _T,
        "status": _T,
        "overdue": _B,
        "currency": _T,
        "total_amount": _M,
        "amount_paid": _M,
        "balance_due": _M,
        "issue_date": _DT,
        "due_date": _DT,
        "paid_at": _I,
        "settlement_time_days": _D,
    },
    "payments_received": {
        "payment_id": _T,
        "reference": _T,
        "invoice_id": _T,
        "invoice_number": _T,
        "customer_id": _T,
        "customer_name": _T,
        "method": _T,
        "status": _T,
        "currency": _T,
        "amount": _M,
        "paid_at": _I,
        "paid_month": _T,
    },
    "time_approvals": {
        "time_entry_id": _T,
        "user_id": _T,
        "user_name": _T,
        "project_id": _T,
        "project_name": _T,
        "work_date": _DT,
        "hours": _H,
        "billable": _B,
        "status": _T,
        "submitted_at": _I,
        "approved_at": _I,
        "rejected_at": _I,
        "approved_by": _T,
        "approval_time_hours": _H,
        "approval_time_days": _D,
    },
}

EXPORT_COLUMN_KINDS: MappingProxyType[str, MappingProxyType[str, ColumnKind]] = MappingProxyType(
    {report_type: MappingProxyType(kinds) for report_type, kinds in _KINDS.items()}
)


def column_kinds(report_type: str) -> MappingProxyType[str, ColumnKind]:
    """Every documented export column of ``report_type`` and its kind, in file order."""
    return EXPORT_COLUMN_KINDS[report_type]


def validate_columns(
    report_type: str, columns: Sequence[str] | None, *, field: str = "columns"
) -> list[str] | None:
    """``columns`` if each names a documented column once (and money has its currency).

    Raises ``InvalidInput`` (422) naming every unknown or repeated column.
    """
    if columns is None:
        return None
    known = column_kinds(report_type)
    errors: list[dict[str, str]] = []
    seen: set[str] = set()
    for i, name in enumerate(columns):
        if name not in known:
            errors.append({"field": f"{field}.{i}", "message": f"Unknown column {name!r}."})
        elif name in seen:
            errors.append({"field": f"{field}.{i}", "message": f"Column {name!r} is repeated."})
        seen.add(name)
    if not columns:
        errors.append({"field": field, "message": "Name at least one column (or omit columns)."})
    if errors:
        unknown = [c for c in columns if c not in known]
        message = (
            f"Unknown column(s) for {report_type}: {', '.join(unknown)}. Known: {', '.join(known)}."
            if unknown
            else "Invalid columns."
        )
        raise InvalidInput(message, errors=errors)
    money = [c for c in columns if known[c] == "money"]
    if money and "currency" not in columns:
        raise InvalidInput(
            f"Money column(s) {', '.join(money)} need the currency column.",
            errors=[{"field": field, "message": "Add 'currency' beside money columns."}],
        )
    return list(columns)


def select_columns(query: ExportQuery, columns: Sequence[str] | None) -> ExportQuery:
    """``query`` narrowed to ``columns`` (in that order); unchanged when ``None``."""
    if not columns:
        return query
    unknown = [c for c in columns if c not in query.columns]
    if unknown:  # validated at request time; a report that lost a column must not export
        raise ValueError(f"columns not in this export: {unknown}")
    chosen = sql.SQL("SELECT {columns} FROM ({rows}) AS chosen").format(
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)), rows=sql.SQL(query.sql)
    )
    return ExportQuery(
        sql=chosen.as_string(None),
        params=query.params,
        columns=tuple(columns),
    )
