"""Typed rows for the typed formats (XLSX, Parquet): ``COPY`` → Arrow record batches.

The rows stream from ``COPY (query) TO STDOUT (FORMAT csv)`` exactly as for a CSV export
(a thread drains libpq), but into a pipe instead of a file. On the other end of the
pipe, Arrow's streaming CSV reader parses them, in C++, into record batches of the
columns' real types (:mod:`pivotal_reporting.exports.columns`): decimals exact to the
cent, instants to the microsecond in UTC, dates, booleans, strings (an empty string
stays empty, only SQL NULL is null). The pipe's buffer bounds what is in flight, so the
whole export runs in constant memory whatever its size, and the database and the
parser work at the same time.

Instants: report queries render them as ISO text with milliseconds for CSV/JSON; the
typed query asks the same expressions for microseconds (an instant column that a query
returns as ``timestamptz`` is rendered so here), so no precision is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
import pyarrow as pa
from psycopg import sql
from pyarrow import csv as pa_csv

from pivotal_reporting.exports.columns import ColumnKind
from pivotal_reporting.exports.writers import ExportCancelled, ProgressCallback, _copy_to
from pivotal_reporting.reports.base import ExportQuery
from pivotal_reporting.reports.sql import iso_utc

ARROW_TYPES: Mapping[ColumnKind, pa.DataType] = {
    "text": pa.string(),
    "money": pa.decimal128(15, 2),
    "days": pa.decimal128(18, 4),
    "hours": pa.decimal128(18, 2),
    "instant": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "bool": pa.bool_(),
}
_ISO_MS = """'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'"""
_ISO_US = """'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'"""
if _ISO_MS not in iso_utc("x"):  # pragma: no cover - a changed helper must update this module
    raise ImportError("reports.sql.iso_utc no longer uses the format typed_rows expects")
BLOCK_BYTES = 1 << 18  # Arrow parses the CSV 256 KiB at a time (~2,000 rows)
# Arrow's default (jemalloc) pool keeps freed memory for reuse; the system allocator
# hands it back, so a long export's worker stays flat (measured: +24 MB instead of +56 MB
# peak for a 100,000-row workbook).
pa.set_memory_pool(pa.system_memory_pool())

T = TypeVar("T")


def arrow_schema(columns: Sequence[str], kinds: Mapping[str, ColumnKind]) -> pa.Schema:
    return pa.schema([pa.field(name, ARROW_TYPES[kinds[name]]) for name in columns])


TIMESTAMPTZ_OID = 1184


async def timestamptz_columns(
    conn: psycopg.AsyncConnection[object], query: ExportQuery
) -> frozenset[str]:
    """The columns of ``query`` that PostgreSQL returns as ``timestamptz`` (not text)."""
    async with conn.cursor() as cur:
        probe = sql.SQL("SELECT * FROM ({rows}) AS q LIMIT 0").format(rows=sql.SQL(query.sql))
        await cur.execute(probe, query.params or None)
        description = cur.description or []
    return frozenset(c.name for c in description if c.type_code == TIMESTAMPTZ_OID)


def typed_copy_sql(
    query: ExportQuery,
    kinds: Mapping[str, ColumnKind],
    timestamptz: frozenset[str] = frozenset(),
) -> str:
    """``COPY`` of ``query`` with instants in microseconds, UTC, ISO-8601.

    Instant columns the query already renders as ISO text (``iso_utc``) are asked for
    microseconds in place; ``timestamptz`` ones are rendered here.
    """
    select = []
    for name in query.columns:
        column = f"q.{sql.Identifier(name).as_string()}"
        if kinds[name] == "instant" and name in timestamptz:
            column = (
                f"to_char({column} AT TIME ZONE 'UTC', {_ISO_US}) "
                f"AS {sql.Identifier(name).as_string()}"
            )
        select.append(column)
    inner = query.sql.replace(_ISO_MS, _ISO_US)
    copy = sql.SQL("COPY (SELECT {columns} FROM ({rows}) AS q) TO STDOUT WITH (FORMAT csv)")
    return copy.format(columns=sql.SQL(", ".join(select)), rows=sql.SQL(inner)).as_string(None)


class _PipeSink:
    """The writing end of a pipe; ``BrokenPipeError`` once the reader has gone."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _batches(source: Any, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    options = pa_csv.ConvertOptions(
        column_types=schema,
        null_values=[""],  # only an unquoted empty field (COPY's NULL) is null
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=["t"],
        false_values=["f"],
    )
    read = pa_csv.ReadOptions(column_names=schema.names, block_size=BLOCK_BYTES, use_threads=False)
    reader = pa_csv.open_csv(source, read_options=read, convert_options=options)
    yield from reader


async def stream_typed(
    conn: psycopg.AsyncConnection[object],
    query: ExportQuery,
    kinds: Mapping[str, ColumnKind],
    progress: ProgressCallback,
    consume: Callable[[Iterator[pa.RecordBatch]], T],
) -> tuple[int, T]:
    """Run ``consume`` (in a thread) over the typed batches of ``query``'s rows.

    Returns the number of rows COPY sent and what ``consume`` returned. Cancellation
    (``ExportCancelled`` from ``progress``) and errors on either side stop both.
    """
    schema = arrow_schema(query.columns, kinds)
    copy_sql = typed_copy_sql(query, kinds, await timestamptz_columns(conn, query))
    read_fd, write_fd = os.pipe()
    sink = _PipeSink(write_fd)
    stop = threading.Event()

    def batches(source: Any) -> Iterator[pa.RecordBatch]:
        for batch in _batches(source, schema):
            if stop.is_set():
                break
            yield batch
        if stop.is_set():  # the rows ended early: never finish the document
            raise ExportCancelled

    def run_consumer() -> T:
        # Closing the read end (also on error) stops a still-writing COPY (EPIPE).
        with os.fdopen(read_fd, "rb") as source:
            return consume(batches(source))

    consumer = asyncio.ensure_future(asyncio.to_thread(run_consumer))
    try:
        rows = await _copy_to(conn, copy_sql, query, sink, progress, None)
    except BaseException as producer_error:
        stop.set()
        sink.close()
        try:
            await consumer
        except Exception as consumer_error:
            if isinstance(producer_error, OSError):  # the pipe broke because the reader failed
                raise consumer_error from producer_error
        raise
    sink.close()  # end of file for the parser
    return rows, await consumer
