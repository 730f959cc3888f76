"""Stream a report's rows from ``COPY (query) TO STDOUT`` into a storage file.

Constant memory: rows arrive one at a time from libpq and are written in batches of
``BATCH_BYTES``. The rows and their count come from one snapshot (the count runs on a
second connection that imports the exporter's REPEATABLE READ snapshot), scoped to the
organization, so the file matches ``total_rows`` exactly.

Report queries give raw rows: the values as stored, typed. Each format renders them; only
CSV (opened by spreadsheets) adds a layer, :func:`csv_select`: every text column that can
hold user text is guarded once against formula injection (``reports.sql.formula_safe``: a
cell that starts with tab/CR/LF, or with ``= + - @`` or their full-width forms after
leading white space, gets a leading ``'``), and booleans are written ``true``/``false``.
Numbers and dates are not text, so a negative amount stays a number. JSON (and any typed
format) carries the values as stored, byte-exact. CSV and JSON read the name columns
(user, project, customer) from per-export maps instead of joining them per row
(name_lookups.py); the bytes are the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from psycopg import pq, sql
from psycopg.pq.abc import PGconn

from pivotal_reporting.db import Database, read_snapshot_of_connection
from pivotal_reporting.exports.json_rows import JSON_COPY_OPTIONS, json_select
from pivotal_reporting.exports.name_lookups import (
    csv_name_splice,
    json_name_splice,
    lean_query,
    pg_csv_cell,
)
from pivotal_reporting.replica import ExportedSnapshot
from pivotal_reporting.reports.base import ExportQuery
from pivotal_reporting.reports.sql import csv_boolean, formula_safe
from pivotal_reporting.storage import Partial

TEXT_TYPE_OIDS = frozenset({19, 25, 1042, 1043})  # name, text, bpchar, varchar
BOOLEAN_TYPE_OID = 16
BATCH_BYTES = 256 * 1024  # bytes of whole rows per file write
PROGRESS_EVERY_SECONDS = 0.5
EXPORT_WORK_MEM = "64MB"  # per export transaction

ProgressCallback = Callable[[int], Coroutine[Any, Any, bool]]


class ByteSink(Protocol):
    """Where COPY's bytes go: a storage file, or a pipe to a typed format's parser."""

    def write(self, data: bytes, /) -> Any: ...


class ExportCancelled(Exception):
    """The job was cancelled (or superseded) while its rows were being written."""


@dataclass(frozen=True)
class WriteResult:
    rows: int


@asynccontextmanager
async def snapshot_connection(
    database: Database,
    organization_id: str,
    *,
    snapshot: ExportedSnapshot | None = None,
) -> AsyncIterator[psycopg.AsyncConnection[object]]:
    """A REPEATABLE READ, read-only tenant transaction on a raw psycopg connection, on the
    read replica if there is a usable one (``db.Database.tenant_connection``).

    With ``snapshot`` (from :func:`export_snapshot`) it sees exactly the same data as
    the transaction that exported it, on the same server.
    """
    snapshot_id = snapshot.snapshot_id if snapshot else None
    replica = snapshot.read.on_replica if snapshot else True
    async with database.tenant_connection(organization_id, snapshot_id, replica=replica) as conn:
        await conn.execute(
            "SELECT set_config('TimeZone', 'UTC', true), "
            "set_config('DateStyle', 'ISO, YMD', true), "
            "set_config('IntervalStyle', 'iso_8601', true), "
            "set_config('extra_float_digits', '1', true), "
            # One long query: JIT compilation costs more than it saves on these plain
            # expressions, the ORDER BY of a million joined rows sorts in memory
            # instead of in temporary files, and a third parallel worker keeps the
            # merging process fed (1M rows through psql: 1.8-2.0 s with two, 1.7-1.8 s
            # with three, on two cores). For this transaction only.
            "set_config('jit', 'off', true), "
            f"set_config('work_mem', '{EXPORT_WORK_MEM}', true), "
            "set_config('max_parallel_workers_per_gather', '3', true)"
        )
        yield conn


async def export_snapshot(conn: psycopg.AsyncConnection[object]) -> ExportedSnapshot:
    """Export this transaction's snapshot so that another connection can share it; with
    the instant its data is from."""
    async with conn.cursor() as cur:
        await cur.execute("SELECT pg_export_snapshot()")
        row = await cur.fetchone()
    return ExportedSnapshot(str(row[0]), await read_snapshot_of_connection(conn))  # type: ignore[index]


async def count_rows_in_snapshot(
    database: Database, organization_id: str, snapshot: ExportedSnapshot, query: ExportQuery
) -> int:
    """``count(*)`` of the export on a second connection, in the exporter's snapshot.

    It runs while the rows stream, so an export costs one pass of the query, not two.
    """
    async with snapshot_connection(database, organization_id, snapshot=snapshot) as conn:
        return await count_rows(conn, query)


async def csv_select(conn: psycopg.AsyncConnection[object], query: ExportQuery) -> str:
    """``query.sql`` wrapped for CSV: user-text columns formula-guarded, booleans spelled out.

    Text columns are found by type (so a report cannot forget one); only the report's
    ``closed_text_columns`` (constrained vocabularies, server formats) are left as they are.
    """
    async with conn.cursor() as cur:
        await cur.execute(
            _wrapped("SELECT * FROM ({rows}) AS q LIMIT 0", query), query.params or None
        )
        description = cur.description or []
    columns = []
    for column in description:
        name = sql.Identifier(column.name).as_string(conn)
        if column.type_code in TEXT_TYPE_OIDS and column.name not in query.closed_text_columns:
            columns.append(f"{formula_safe(f'q.{name}')} AS {name}")
        elif column.type_code == BOOLEAN_TYPE_OID:
            columns.append(f"{csv_boolean(f'q.{name}')} AS {name}")
        else:
            columns.append(f"q.{name}")
    guarded = sql.SQL("SELECT {columns} FROM ({rows}) AS q").format(
        columns=sql.SQL(", ".join(columns)), rows=sql.SQL(query.sql)
    )
    return guarded.as_string(conn)


def _wrapped(template: str, query: ExportQuery) -> sql.Composed:
    """``template`` with ``{rows}`` standing for the report's (reviewed) row query."""
    return sql.SQL(template).format(rows=sql.SQL(query.sql))


async def count_rows(conn: psycopg.AsyncConnection[object], query: ExportQuery) -> int:
    async with conn.cursor() as cur:
        count_sql = (
            sql.SQL(query.count_sql)
            if query.count_sql
            else _wrapped("SELECT count(*) FROM ({rows}) AS q", query)
        )
        await cur.execute(count_sql, query.params or None)
        row = await cur.fetchone()
    return int(row[0]) if row else 0  # type: ignore[index]


async def write_csv(
    conn: psycopg.AsyncConnection[object],
    query: ExportQuery,
    out: Partial,
    progress: ProgressCallback,
) -> WriteResult:
    """CSV with a header row (UTF-8, RFC 4180 quoting by PostgreSQL), guarded by
    :func:`csv_select`; names from per-export maps when the query has lookups."""
    if query.lean_sql is not None and query.lookups:
        return await _write_csv_with_names(conn, query, out, progress)
    select = await csv_select(conn, query)
    copy_sql = sql.SQL("COPY ({select}) TO STDOUT WITH (FORMAT csv, HEADER true)").format(
        select=sql.SQL(select)
    )
    rows = await _copy_to(conn, copy_sql, query, out, progress, transform=None)
    return WriteResult(rows=rows - 1)  # the header is one COPY row


async def _write_csv_with_names(
    conn: psycopg.AsyncConnection[object],
    query: ExportQuery,
    out: Partial,
    progress: ProgressCallback,
) -> WriteResult:
    """:func:`write_csv` of the lean row query, the names written in from their maps
    (name_lookups.py); the same bytes."""
    splice = await csv_name_splice(conn, query)
    lean = lean_query(query)
    select = await csv_select(conn, lean)
    copy_sql = sql.SQL("COPY ({select}) TO STDOUT WITH (FORMAT csv)").format(select=sql.SQL(select))
    encoding = conn.info.encoding
    out.write(b",".join(pg_csv_cell(name, encoding) for name in query.columns) + b"\n")
    rows = await _copy_to(conn, copy_sql, lean, out, progress, transform=None, splice=splice)
    return WriteResult(rows=rows)


async def write_json(
    conn: psycopg.AsyncConnection[object],
    query: ExportQuery,
    out: Partial,
    progress: ProgressCallback,
) -> WriteResult:
    """A JSON array of objects keyed by column name: the raw rows, text byte-exact as
    stored, numbers exact decimals, booleans ``true``/``false``: the bytes of
    ``row_to_json``, built as text by cheaper expressions (json_rows.py). Names come
    from per-export maps when the query has lookups (name_lookups.py)."""
    splice = None
    raw: tuple[str, ...] = ()
    if query.lean_sql is not None and query.lookups:
        splice = await json_name_splice(conn, query)
        raw = tuple(lookup.key for lookup in query.lookups)
        query = lean_query(query)
    select = await json_select(conn, query, raw)
    copy_sql = sql.SQL("COPY ({select}) TO STDOUT WITH ({options})").format(
        select=sql.SQL(select), options=sql.SQL(JSON_COPY_OPTIONS)
    )
    out.write(b"[")
    first = True

    def to_array_items(batch: bytes) -> bytes:
        nonlocal first
        # batch is "row\nrow\n...row\n"; emit "\nrow,\nrow...,\nrow" with a leading comma after the first batch
        body = batch[:-1].replace(b"\n", b",\n")
        prefix = b"\n" if first else b",\n"
        first = False
        return prefix + body

    rows = await _copy_to(
        conn, copy_sql, query, out, progress, transform=to_array_items, splice=splice
    )
    out.write(b"\n]\n" if rows else b"]\n")
    return WriteResult(rows=rows)


async def _copy_to(
    conn: psycopg.AsyncConnection[object],
    copy_sql: str | sql.Composed,
    query: ExportQuery,
    out: ByteSink,
    progress: ProgressCallback,
    transform: Callable[[bytes], bytes] | None,
    splice: Callable[[bytes], bytes] | None = None,
) -> int:
    """Run one COPY TO STDOUT into ``out``; returns the number of COPY rows.

    ``splice`` rewrites each row as it arrives (names written in), ``transform`` each
    batch of rows.

    psycopg starts the COPY (binding parameters client-side) and cleans up on error; the
    rows are drained by a thread in blocking libpq calls, because libpq hands over one
    row per call and an event-loop round trip per row would cost more than PostgreSQL
    spends producing it. The connection is ours alone until the COPY ends.
    """
    loop = asyncio.get_running_loop()
    stop = threading.Event()

    def report(rows: int) -> bool:
        if stop.is_set():
            return False
        return asyncio.run_coroutine_threadsafe(progress(rows), loop).result()

    async with conn.cursor() as cur, cur.copy(copy_sql, query.params or None):
        drain = asyncio.ensure_future(
            asyncio.to_thread(_drain_copy_out, conn.pgconn, out, report, transform, splice)
        )
        try:
            return await asyncio.shield(drain)
        except asyncio.CancelledError:
            # The thread owns the connection until it returns: stop it, wait, then let
            # psycopg cancel the COPY on the server.
            stop.set()
            with contextlib.suppress(BaseException):
                await drain
            raise


def _drain_copy_out(
    pgconn: PGconn,
    out: ByteSink,
    report: Callable[[int], bool],
    transform: Callable[[bytes], bytes] | None,
    splice: Callable[[bytes], bytes] | None,
) -> int:
    rows = 0
    # One growing buffer, not a list of rows: each row arrives as a memoryview of
    # libpq's memory, and holding thousands of them until a join costs more CPU than
    # copying each into the buffer at once (measured: ~2.5 s vs ~1.2 s per million rows).
    buffer = bytearray()
    get_copy_data = pgconn.get_copy_data
    next_check = time.monotonic() + PROGRESS_EVERY_SECONDS
    while True:
        nbytes, data = get_copy_data(0)  # blocks until a row, the end (-1) or an error (-2)
        if nbytes < 0:
            break
        buffer += data if splice is None else splice(bytes(data))
        rows += 1
        if len(buffer) >= BATCH_BYTES:
            _flush(buffer, out, transform)
            if time.monotonic() >= next_check:
                if not report(rows):
                    raise ExportCancelled
                next_check = time.monotonic() + PROGRESS_EVERY_SECONDS
    _flush(buffer, out, transform)
    while (result := pgconn.get_result()) is not None:  # COPY's final status
        if result.status != pq.ExecStatus.COMMAND_OK:
            raise psycopg.errors.error_from_result(result, encoding=pgconn._encoding)
    return rows


def _flush(buffer: bytearray, out: ByteSink, transform: Callable[[bytes], bytes] | None) -> None:
    """Write the whole rows in ``buffer`` (through ``transform``) and empty it."""
    if not buffer:
        return
    data = bytes(buffer)
    buffer.clear()
    out.write(transform(data) if transform else data)
