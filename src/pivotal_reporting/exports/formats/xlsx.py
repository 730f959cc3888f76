"""XLSX: a Summary sheet and typed Rows sheets, streamed in constant memory.

- **Summary** (first tab): the report, organization, time zone, filters, who generated
  it and when, the database snapshot, the row count, then every figure of the summary
  endpoint for the same filters (computed in the rows' snapshot) with its one-line
  definition.
- **Rows**, **Rows (2)**, …: one row per export row, at most 1,048,575 per sheet (the
  header takes the first of Excel's 1,048,576). Cells are typed: instants are Excel
  date-times in the organization's time zone (named in the header), dates are dates,
  money is the exact stored decimal in its currency's number format, days and hours are
  numbers, booleans booleans; text is always an inline string, so it is never read as
  a formula, a number or a link. Styled, frozen header; autofilter; widths by kind.

The rows arrive as Arrow batches (typed_rows.py) and are written column-wise by the
small streaming writer in xlsx_stream.py (XlsxWriter's per-cell calls were ~15x too
slow at 100,000 rows; see docs/export-formats.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import IO, Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from pivotal_reporting.exports.columns import ColumnKind
from pivotal_reporting.exports.formats.base import ExportDocument
from pivotal_reporting.exports.formats.figures import flatten, summary_in_snapshot
from pivotal_reporting.exports.formats.typed_rows import stream_typed
from pivotal_reporting.exports.formats.xlsx_stream import (
    MAX_SHEET_ROWS,
    Sheet,
    StreamingWorkbook,
    Styles,
    column_letter,
    number_cell,
    string_cell,
)
from pivotal_reporting.exports.writers import ProgressCallback, WriteResult
from pivotal_reporting.reports.base import ExportQuery
from pivotal_reporting.storage import Partial

MAX_DATA_ROWS = MAX_SHEET_ROWS - 1  # less the header row
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
_INVALID_XML_RE2 = "[\\x{0}-\\x{8}\\x{b}\\x{c}\\x{e}-\\x{1f}\\x{fffe}\\x{ffff}]"


def currency_format(code: str) -> str:
    """An Excel number format showing the currency code, e.g. ``#,##0.00 "USD"``."""
    code = "".join(ch for ch in code.strip() if ch.isalnum())
    if not code:
        return "#,##0.00"
    digits = "#,##0" if code in _ZERO_DECIMAL_CURRENCIES else "#,##0.00"
    return f'{digits} "{code}";-{digits} "{code}"'


def header_label(name: str, kind: ColumnKind, timezone: str) -> str:
    return f"{name} ({timezone})" if kind == "instant" else name


def _escaped_text(column: pa.Array) -> pa.Array:
    """Text for XML element content, escaped by Arrow (vectorised)."""
    text = column.cast(pa.string())
    text = pc.replace_substring_regex(text, _INVALID_XML_RE2, "")
    text = pc.replace_substring(text, "&", "&amp;")
    text = pc.replace_substring(text, "<", "&lt;")
    return pc.replace_substring(text, ">", "&gt;")


class _RowsWriter:
    """Writes Arrow batches into Rows sheets; starts a new sheet every ``max_rows``."""

    def __init__(
        self,
        workbook: StreamingWorkbook,
        columns: Sequence[str],
        kinds: Sequence[ColumnKind],
        timezone: str,
        max_rows: int,
    ) -> None:
        self.workbook = workbook
        self.columns = list(columns)
        self.kinds = list(kinds)
        self.letters = [column_letter(i) for i in range(len(columns))]
        self.timezone = timezone
        self.max_rows = max_rows
        styles = workbook.styles
        self.styles = {kind: styles.number(fmt) for kind, fmt in _NUMBER_FORMATS.items()}
        self.money_styles: dict[str | None, int] = {}
        self.currency_index = self.columns.index("currency") if "currency" in columns else None
        self.sheet: Sheet | None = None
        self.sheet_numbers: list[int] = []
        self.total = 0

    def _money_style(self, code: str | None) -> int:
        found = self.money_styles.get(code)
        if found is None:
            found = self.money_styles[code] = self.workbook.styles.number(
                currency_format(code or "")
            )
        return found

    def _new_sheet(self) -> Sheet:
        self._close_sheet()
        number = len(self.sheet_numbers) + 1
        labels = [
            header_label(n, k, self.timezone) for n, k in zip(self.columns, self.kinds, strict=True)
        ]
        widths = [
            max(_WIDTHS[k], min(len(label) + 2, 40))
            for k, label in zip(self.kinds, labels, strict=True)
        ]
        sheet = self.workbook.add_sheet("Rows" if number == 1 else f"Rows ({number})", widths)
        self.sheet_numbers.append(len(self.workbook.sheets))
        header = "".join(
            string_cell(f"{letter}1", label, Styles.HEADER)
            for letter, label in zip(self.letters, labels, strict=True)
        )
        sheet.write(f'<row r="1">{header}</row>')
        sheet.rows = 1
        self.sheet = sheet
        return sheet

    def _close_sheet(self) -> None:
        if self.sheet is not None:
            ref = f"$A$1:${self.letters[-1]}${max(self.sheet.rows, 2)}"
            self.workbook.set_autofilter(self.sheet_numbers[-1], ref)
            self.sheet.close(autofilter=True)
            self.sheet = None

    def finish(self) -> None:
        if not self.sheet_numbers:
            self._new_sheet()
        self._close_sheet()

    def write_batch(self, batch: pa.RecordBatch) -> None:
        offset = 0
        while offset < batch.num_rows:
            if self.sheet is None or self.sheet.rows - 1 >= self.max_rows:
                self._new_sheet()
            sheet = self.sheet
            assert sheet is not None
            room = self.max_rows - (sheet.rows - 1)
            part = batch.slice(offset, min(room, batch.num_rows - offset))
            self._write_rows(sheet, part)
            offset += part.num_rows

    def _write_rows(self, sheet: Sheet, batch: pa.RecordBatch) -> None:
        """The batch's rows as sheet XML, built by Arrow kernels (no per-cell Python)."""
        first = sheet.rows + 1
        numbers = pa.array(range(first, first + batch.num_rows), pa.int64()).cast(pa.string())
        currencies = batch.column(self.currency_index) if self.currency_index is not None else None
        cells = [
            self._cells(batch.column(i), kind, letter, numbers, currencies)
            for i, (kind, letter) in enumerate(zip(self.kinds, self.letters, strict=True))
        ]
        rows = pc.binary_join_element_wise('<row r="', numbers, '">', *cells, "</row>", "")
        sheet.write_bytes(_string_data(rows))
        sheet.rows += batch.num_rows
        self.total += batch.num_rows

    def _cells(
        self,
        column: pa.Array,
        kind: ColumnKind,
        letter: str,
        numbers: pa.Array,
        currencies: pa.Array | None,
    ) -> pa.Array:
        """Each row's cell of ``column`` as XML text; ``""`` where the value is NULL."""
        ref = f'<c r="{letter}'
        if kind == "text":
            parts = [ref, numbers, '" t="inlineStr"><is><t xml:space="preserve">']
            parts += [_escaped_text(column), "</t></is></c>"]
        elif kind == "bool":
            parts = [ref, numbers, '" t="b"><v>', pc.if_else(column, "1", "0"), "</v></c>"]
        elif kind == "money":
            styles = self._money_styles_of(currencies, len(column))
            parts = [ref, numbers, '" s="', styles, '"><v>', column.cast(pa.string()), "</v></c>"]
        else:
            if kind == "instant":
                local = pc.local_timestamp(column.cast(pa.timestamp("us", tz=self.timezone)))
                micros = local.cast(pa.int64()).cast(pa.float64())
                values = pc.add(pc.divide(micros, _MICROS_PER_DAY), _EXCEL_EPOCH_DAYS)
            elif kind == "date":
                values = pc.add(column.cast(pa.int32()).cast(pa.int64()), _EXCEL_EPOCH_DAYS)
            else:  # days, hours: the exact decimal text
                values = column
            style = self.styles[kind]
            parts = [ref, numbers, f'" s="{style}"><v>', values.cast(pa.string()), "</v></c>"]
        return pc.fill_null(pc.binary_join_element_wise(*parts, ""), "")

    def _money_styles_of(self, currencies: pa.Array | None, length: int) -> pa.Array:
        """Each row's money style id (as text), from its currency."""
        if currencies is None:
            return pa.array([str(self._money_style(None))] * length, pa.string())
        codes = pc.unique(currencies)
        ids = pa.array([str(self._money_style(code)) for code in codes.to_pylist()], pa.string())
        styles = pc.take(ids, pc.index_in(currencies, value_set=codes))
        return pc.fill_null(styles, str(self._money_style(None)))


def _string_data(strings: pa.Array) -> memoryview:
    """The concatenated UTF-8 bytes of a string array (no copy)."""
    if len(strings) == 0:
        return memoryview(b"")
    offsets = strings.buffers()[1]
    first, last = (
        int.from_bytes(memoryview(offsets)[i * 4 : i * 4 + 4], "little", signed=True)
        for i in (strings.offset, strings.offset + len(strings))
    )
    return memoryview(strings.buffers()[2])[first:last]


def _excel_serial(instant: datetime) -> float:
    naive = instant.astimezone(UTC).replace(tzinfo=None)
    return (naive - datetime(1899, 12, 30)).total_seconds() / 86400


def _summary_rows(
    workbook: StreamingWorkbook, document: ExportDocument, summary: dict[str, Any], rows: int
) -> list[str]:
    ctx = document.context
    styles = workbook.styles
    datetime_style = styles.number("yyyy-mm-dd hh:mm:ss")

    def value_cell(ref: str, value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, int) and not isinstance(value, bool):
            return number_cell(ref, value)
        if isinstance(value, Decimal):
            places = max(0, -int(value.as_tuple().exponent))
            style = styles.number("0." + "0" * places if places else "0")
            return number_cell(ref, format(value, "f"), style)
        if isinstance(value, datetime):
            return number_cell(ref, repr(_excel_serial(value)), datetime_style)
        return string_cell(ref, str(value))

    filters = document.filters.applied()
    about: list[tuple[str, Any]] = [
        ("Report", document.report.report_type),
        ("Organization", document.organization_name),
        ("Organization id", ctx.organization_id),
        ("Time zone", ctx.timezone),
        *((f"Filter: {key}", str(value)) for key, value in filters.items()),
        ("Generated by", document.generated_by),
        ("Generated at (UTC)", document.generated_at),
        ("Database snapshot", document.snapshot_id),
        ("Export job", document.job_id),
        ("Rows", rows),
    ]
    if not filters:
        about.insert(4, ("Filters", "(none)"))
    out = [f'<row r="1">{string_cell("A1", "About this export", Styles.BOLD)}</row>']
    r = 1
    for label, value in about:
        r += 1
        out.append(f'<row r="{r}">{string_cell(f"A{r}", label)}{value_cell(f"B{r}", value)}</row>')
    r += 2
    heads = ("Figure", "Value", "Definition")
    out.append(
        f'<row r="{r}">'
        + "".join(string_cell(f"{c}{r}", h, Styles.BOLD) for c, h in zip("ABC", heads, strict=True))
        + "</row>"
    )
    for figure in flatten(summary, document.report.summary_model):
        r += 1
        value = figure.value
        if isinstance(value, datetime):  # asOf: the instant, as the API gives it
            value = value.isoformat().replace("+00:00", "Z")
        out.append(
            f'<row r="{r}">{string_cell(f"A{r}", figure.key)}{value_cell(f"B{r}", value)}'
            f"{string_cell(f'C{r}', figure.definition)}</row>"
        )
    return out


def build_workbook(
    target: IO[bytes] | str,
    document: ExportDocument,
    columns: Sequence[str],
    batches: Iterator[pa.RecordBatch],
    summary_of: Callable[[], dict[str, Any]],
    *,
    max_rows: int = MAX_DATA_ROWS,
) -> int:
    """Write the workbook to ``target``; returns the number of data rows written.

    On an error or a cancel the zip is left unfinished (the caller discards it).
    """
    workbook = StreamingWorkbook(
        target,
        title=f"{document.report.report_type} export",
        author=document.generated_by,
        company=document.organization_name,
    )
    kinds = [document.kinds[name] for name in columns]
    rows = _RowsWriter(workbook, columns, kinds, document.context.timezone, max_rows)
    try:
        for batch in batches:
            rows.write_batch(batch)
        rows.finish()
        summary = workbook.add_sheet("Summary", [42, 22, 70], frozen_header=False)
        summary.write("".join(_summary_rows(workbook, document, summary_of(), rows.total)))
        summary.close(autofilter=False)
        summary_number = len(workbook.sheets)
        workbook.close(tab_order=[summary_number, *rows.sheet_numbers])
    except BaseException:
        workbook.abandon()
        raise
    return rows.total


class _Sink:
    """``Partial`` (which hashes what it writes) as the zip writer's output."""

    def __init__(self, out: Partial) -> None:
        self.out = out

    def write(self, data: bytes) -> int:
        self.out.write(bytes(data))
        return len(data)


async def write(
    document: ExportDocument,
    conn: psycopg.AsyncConnection[object],
    query: ExportQuery,
    out: Partial,
    progress: ProgressCallback,
) -> WriteResult:
    # The figures, in the same snapshot as the rows, on a second connection while the
    # rows stream; the Summary sheet is written last and waits for them.
    loop = asyncio.get_running_loop()
    summary = asyncio.ensure_future(summary_in_snapshot(document))

    async def figures() -> dict[str, Any]:
        return await summary

    def summary_of() -> dict[str, Any]:  # called in the writer's thread
        return asyncio.run_coroutine_threadsafe(figures(), loop).result()

    sink: Any = _Sink(out)
    try:
        rows, _ = await stream_typed(
            conn,
            query,
            document.kinds,
            progress,
            lambda batches: build_workbook(sink, document, query.columns, batches, summary_of),
        )
    finally:
        if not summary.done():
            summary.cancel()
        with contextlib.suppress(BaseException):
            await summary
    return WriteResult(rows=rows)
