"""Parquet: typed columns written by pyarrow in row groups as the rows stream.

Schema (exports/columns.py): strings; money ``decimal(15,2)`` beside its ``currency``
column; days ``decimal(18,4)``; hours ``decimal(18,2)``; instants
``timestamp[us, UTC]``; dates ``date32``; booleans ``bool``. Values are exactly those
stored: no rounding, no float. Row groups of ``ROW_GROUP_ROWS`` rows, Zstandard
compression; the file's key-value metadata names the report, organization, time zone,
filters, database snapshot and generation time.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

from pivotal_reporting.exports.formats.base import ExportDocument
from pivotal_reporting.exports.formats.typed_rows import arrow_schema, stream_typed
from pivotal_reporting.exports.writers import ProgressCallback, WriteResult
from pivotal_reporting.reports.base import ExportQuery
from pivotal_reporting.storage import Partial

# The Parquet encoder's own buffers (outside Arrow's pool) grow with the row group:
# measured at 1M rows, peak RSS +51 MB with 16,384-row groups, +100 MB with 65,536.
ROW_GROUP_ROWS = 16_384


class _Sink(io.RawIOBase):
    """A write-only, sequential file over ``Partial`` (which hashes what it writes)."""

    def __init__(self, out: Partial) -> None:
        self.out = out

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.out.write(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.out.size


def metadata(document: ExportDocument) -> dict[str, str]:
    ctx = document.context
    return {
        "pivotal.report_type": document.report.report_type,
        "pivotal.organization_id": ctx.organization_id,
        "pivotal.organization_name": document.organization_name,
        "pivotal.timezone": ctx.timezone,
        "pivotal.filters": json.dumps(document.filters.applied(), sort_keys=True),
        "pivotal.generated_by": document.generated_by,
        "pivotal.generated_at": document.generated_at.isoformat(),
        "pivotal.snapshot": document.snapshot_id,
        "pivotal.export_job": document.job_id,
    }


def write_parquet(
    sink: Any, schema: pa.Schema, batches: Iterator[pa.RecordBatch], meta: dict[str, str]
) -> int:
    """Write ``batches`` to ``sink`` in row groups of ROW_GROUP_ROWS; returns the rows."""
    schema = schema.with_metadata(meta)
    rows = 0
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        for batch in batches:
            pending.append(batch)
            pending_rows += batch.num_rows
            rows += batch.num_rows
            if pending_rows >= ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(pending, schema))
                pending, pending_rows = [], 0
        if pending or not rows:
            writer.write_table(pa.Table.from_batches(pending, schema))
    return rows


async def write(
    document: ExportDocument,
    conn: psycopg.AsyncConnection[object],
    query: ExportQuery,
    out: Partial,
    progress: ProgressCallback,
) -> WriteResult:
    schema = arrow_schema(query.columns, document.kinds)
    meta = metadata(document)
    rows, _ = await stream_typed(
        conn,
        query,
        document.kinds,
        progress,
        lambda batches: write_parquet(_Sink(out), schema, batches, meta),
    )
    return WriteResult(rows=rows)
