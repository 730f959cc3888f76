"""JSON: an array of row objects built by PostgreSQL (``row_to_json``), see writers.py."""

from __future__ import annotations

import psycopg

from pivotal_reporting.exports.formats.base import ExportDocument
from pivotal_reporting.exports.writers import ProgressCallback, WriteResult, write_json
from pivotal_reporting.reports.base import ExportQuery
from pivotal_reporting.storage import Partial


async def write(
    document: ExportDocument,
    conn: psycopg.AsyncConnection[object],
    query: ExportQuery,
    out: Partial,
    progress: ProgressCallback,
) -> WriteResult:
    return await write_json(conn, query, out, progress)
