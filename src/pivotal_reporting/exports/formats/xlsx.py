"""XLSX: a Summary sheet and typed Rows sheets, written by XlsxWriter in constant memory.

- **Summary**: the report, organization, time zone, filters, who generated it and when,
  the database snapshot, the row count, then every figure of the summary endpoint for
  the same filters (same snapshot as the rows) with its one-line definition.
- **Rows**, **Rows (2)**, …: one row per export row, at most 1,048,575 per sheet (the
  header takes the first of Excel's 1,048,576). Cells are typed: instants are Excel
  date-times in the organization's time zone (named in the header), dates are dates,
  money a number in its currency's format, days and hours numbers, booleans booleans;
  text is always a text cell (``strings_to_formulas``/``strings_to_urls`` are off, and
  strings are written with ``write_string``). Bold frozen header, autofilter, widths
  by kind.

XlsxWriter's ``constant_memory`` mode flushes each row to a temporary file as soon as
the next begins, so memory does not grow with the rows; the rows arrive as Arrow
batches (typed_rows.py) and each column is converted once per batch, vectorised.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from pivotal_reporting.exports.columns import ColumnKind
from pivotal_reporting.exports.formats.base import ExportDocument, ExportFormatSpec
from pivotal_reporting.exports.formats.figures import flatten, is_number, summary_in_snapshot
from pivotal_reporting.exports.formats.typed_rows import stream_typed
from pivotal_reporting.exports.storage import PartialFile
from pivotal_reporting.exports.writers import ProgressCallback, WriteResult
from pivotal_reporting.reports.base import ExportQuery

MAX_DATA_ROWS = 1_048_575  # Excel's 1,048,576 rows less the header
_EXCEL_EPOCH_DAYS = 25569  # 1970-01-01 as an Excel serial day (1900 date system)
_MICROS_PER_DAY = 86_400_000_000
_WIDTHS: dict[ColumnKind, float] = {
    "text": 22,
    "money": 16,
    "days": 12,
    "hours": 12,
    "instant": 20,
    "date": 12,
    "bool": 10,
}
_NUMBER_FORMATS: dict[ColumnKind, str] = {
    "days": "0.0000",
    "hours": "0.00",
    "instant": "yyyy-mm-dd hh:mm:ss",
    "date": "yyyy-mm-dd",
}
# ISO 4217 minor units that differ from two decimals (amounts are stored with two).
_ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "HUF", "TWD", "UGX"})
COPY_CHUNK = 1 << 20


def currency_format(code: str) -> str:
    """An Excel number format showing the currency code, e.g. ``#,##0.00 "USD"``."""
    code = code.strip()
    digits = "#,##0" if code in _ZERO_DECIMAL_CURRENCIES else "#,##0.00"
    safe = "".join(ch for ch in code if ch.isalnum())
    return f'{digits} "{safe}";-{digits} "{safe}"'


def header_label(name: str, kind: ColumnKind, timezone: str) -> str:
    return f"{name} ({timezone})" if kind == "instant" else name


class _RowsWriter:
    """Writes Arrow batches into Rows sheets; starts a new sheet every MAX_DATA_ROWS."""

    def __init__(
        self,
        workbook: xlsxwriter.Workbook,
        columns: Sequence[str],
        kinds: Sequence[ColumnKind],
        timezone: str,
        header: Format,
        max_rows: int,
    ) -> None:
        self.workbook = workbook
        self.columns = list(columns)
        self.kinds = list(kinds)
        self.timezone = timezone
        self.header = header
        self.max_rows = max_rows
        self.formats: dict[ColumnKind, Format] = {
            kind: workbook.add_format({"num_format": fmt}) for kind, fmt in _NUMBER_FORMATS.items()
        }
        self.money_formats: dict[str, Format] = {}
        self.currency_index = self.columns.index("currency") if "currency" in columns else None
        self.sheets: list[Worksheet] = []
        self.sheet: Worksheet | None = None
        self.row = 0
        self.total = 0

    def _money_format(self, code: str | None) -> Format:
        key = (code or "").strip()
        found = self.money_formats.get(key)
        if found is None:
            fmt = currency_format(key) if key else "#,##0.00"
            found = self.money_formats[key] = self.workbook.add_format({"num_format": fmt})
        return found

    def _new_sheet(self) -> Worksheet:
        self._close_sheet()
        number = len(self.sheets) + 1
        sheet = self.workbook.add_worksheet("Rows" if number == 1 else f"Rows ({number})")
        for col, (name, kind) in enumerate(zip(self.columns, self.kinds, strict=True)):
            label = header_label(name, kind, self.timezone)
            sheet.set_column(col, col, max(_WIDTHS[kind], min(len(label) + 2, 40)))
        sheet.freeze_panes(1, 0)
        for col, (name, kind) in enumerate(zip(self.columns, self.kinds, strict=True)):
            sheet.write_string(0, col, header_label(name, kind, self.timezone), self.header)
        self.sheets.append(sheet)
        self.sheet = sheet
        self.row = 0
        return sheet

    def _close_sheet(self) -> None:
        if self.sheet is not None:
            self.sheet.autofilter(0, 0, max(self.row, 1), len(self.columns) - 1)

    def finish(self) -> None:
        if self.sheet is None:
            self._new_sheet()
        self._close_sheet()

    def write_batch(self, batch: pa.RecordBatch) -> None:
        values = [self._column_values(batch.column(i), kind) for i, kind in enumerate(self.kinds)]
        currencies = values[self.currency_index] if self.currency_index is not None else None
        kinds = self.kinds
        formats = self.formats
        for i in range(batch.num_rows):
            if self.sheet is None or self.row >= self.max_rows:
                self._new_sheet()
            sheet = self.sheet
            assert sheet is not None
            self.row += 1
            r = self.row
            for col, kind in enumerate(kinds):
                value = values[col][i]
                if value is None:
                    continue
                if kind == "text":
                    sheet.write_string(r, col, value)
                elif kind == "money":
                    currency = currencies[i] if currencies is not None else None
                    sheet.write_number(r, col, value, self._money_format(currency))
                elif kind == "bool":
                    sheet.write_boolean(r, col, value)
                else:
                    sheet.write_number(r, col, value, formats[kind])
        self.total += batch.num_rows

    def _column_values(self, column: pa.Array, kind: ColumnKind) -> list[Any]:
        if kind in ("money", "days", "hours"):
            return column.cast(pa.float64()).to_pylist()  # type: ignore[no-any-return]
        if kind == "instant":
            local = pc.local_timestamp(column.cast(pa.timestamp("us", tz=self.timezone)))
            micros = local.cast(pa.int64())
            days = pc.add(pc.divide(micros.cast(pa.float64()), _MICROS_PER_DAY), _EXCEL_EPOCH_DAYS)
            return days.to_pylist()  # type: ignore[no-any-return]
        if kind == "date":
            days = pc.add(column.cast(pa.int32()).cast(pa.float64()), _EXCEL_EPOCH_DAYS)
            return days.to_pylist()  # type: ignore[no-any-return]
        return column.to_pylist()  # type: ignore[no-any-return]


def _summary_sheet(
    workbook: xlsxwriter.Workbook,
    sheet: Worksheet,
    document: ExportDocument,
    summary: dict[str, Any],
    rows: int,
    bold: Format,
) -> None:
    ctx = document.context
    sheet.set_column(0, 0, 42)
    sheet.set_column(1, 1, 22)
    sheet.set_column(2, 2, 70)
    datetime_format = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    decimal_formats: dict[int, Format] = {}

    def number(r: int, value: int | Decimal) -> None:
        if isinstance(value, int):
            sheet.write_number(r, 1, value)
            return
        places = max(0, -int(value.as_tuple().exponent))
        fmt = decimal_formats.get(places)
        if fmt is None:
            fmt = decimal_formats[places] = workbook.add_format(
                {"num_format": "0." + "0" * places if places else "0"}
            )
        sheet.write_number(r, 1, float(value), fmt)

    filters = document.filters.applied()
    header: list[tuple[str, Any]] = [
        ("Report", document.report.report_type),
        ("Organization", document.organization_name),
        ("Organization id", ctx.organization_id),
        ("Time zone", ctx.timezone),
        *((f"Filter: {key}", str(value)) for key, value in filters.items()),
        ("Generated by", document.generated_by),
        ("Generated at (UTC)", document.generated_at.astimezone(UTC).replace(tzinfo=None)),
        ("Database snapshot", document.snapshot_id),
        ("Export job", document.job_id),
        ("Rows", rows),
    ]
    if not filters:
        header.insert(4, ("Filters", "(none)"))
    r = 0
    sheet.write_string(r, 0, "About this export", bold)
    for label, value in header:
        r += 1
        sheet.write_string(r, 0, label)
        if isinstance(value, datetime):
            sheet.write_datetime(r, 1, value, datetime_format)
        elif isinstance(value, int):
            sheet.write_number(r, 1, value)
        else:
            sheet.write_string(r, 1, str(value))
    r += 2
    sheet.write_string(r, 0, "Figure", bold)
    sheet.write_string(r, 1, "Value", bold)
    sheet.write_string(r, 2, "Definition", bold)
    for figure in flatten(summary, document.report.summary_model):
        r += 1
        sheet.write_string(r, 0, figure.key)
        value = figure.value
        if value is None:
            sheet.write_blank(r, 1, None)
        elif is_number(value):
            number(r, value)
        elif isinstance(value, datetime):
            sheet.write_string(r, 1, value.isoformat().replace("+00:00", "Z"))
        else:
            sheet.write_string(r, 1, str(value))
        sheet.write_string(r, 2, figure.definition)


def build_workbook(
    path: str,
    document: ExportDocument,
    columns: Sequence[str],
    batches: Iterator[pa.RecordBatch],
    summary_of: Any,
    *,
    max_rows: int = MAX_DATA_ROWS,
) -> int:
    """Write the workbook to ``path``; returns the number of data rows written."""
    workbook = xlsxwriter.Workbook(
        path,
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "tmpdir": os.path.dirname(path),
        },
    )
    workbook.set_properties(
        {
            "title": f"{document.report.report_type} export",
            "company": document.organization_name,
            "author": document.generated_by,
            "comments": f"database snapshot {document.snapshot_id}",
        }
    )
    bold = workbook.add_format({"bold": True})
    header = workbook.add_format(
        {"bold": True, "font_color": "#FFFFFF", "bg_color": "#1F4E78", "border": 1}
    )
    summary_sheet = workbook.add_worksheet("Summary")
    kinds = [document.kinds[name] for name in columns]
    rows = _RowsWriter(workbook, columns, kinds, document.context.timezone, header, max_rows)
    # On an error or a cancel the workbook is abandoned, never assembled: the caller
    # removes its directory with XlsxWriter's temporary files.
    for batch in batches:
        rows.write_batch(batch)
    rows.finish()
    _summary_sheet(workbook, summary_sheet, document, summary_of(), rows.total, bold)
    workbook.close()
    return rows.total


async def write(
    document: ExportDocument,
    conn: psycopg.AsyncConnection[object],
    query: ExportQuery,
    out: PartialFile,
    progress: ProgressCallback,
) -> WriteResult:
    # The figures first, in the same snapshot as the rows (a second connection).
    summary = await summary_in_snapshot(document)
    # XlsxWriter assembles the zip at close from its temporary files; build it in a
    # directory of its own, then copy it through ``out`` (which hashes what it writes).
    workdir = tempfile.mkdtemp(prefix="pivotal-xlsx-")
    path = os.path.join(workdir, "export.xlsx")
    try:

        def build(batches: Iterator[pa.RecordBatch]) -> int:  # in a thread
            written = build_workbook(path, document, query.columns, batches, lambda: summary)
            with open(path, "rb") as built:
                while chunk := built.read(COPY_CHUNK):
                    out.write(chunk)
            return written

        rows, _ = await stream_typed(conn, query, document.kinds, progress, build)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return WriteResult(rows=rows)


XLSX = ExportFormatSpec(
    "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", write
)

__all__ = ["XLSX", "build_workbook", "currency_format"]
