"""What every format writer receives, and the shape of a writer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.db import Database
from pivotal_reporting.exports.columns import ColumnKind
from pivotal_reporting.exports.writers import ProgressCallback, WriteResult
from pivotal_reporting.reports.base import ExportQuery, Report, ReportContext, ReportFilters
from pivotal_reporting.storage import Partial


@dataclass(frozen=True)
class ExportDocument:
    """The job's context: who, which organization, which report, which snapshot.

    ``snapshot_id`` is the exported REPEATABLE READ snapshot the rows stream from;
    documents with figures (XLSX Summary, PDF) compute them in the same snapshot, so the
    figures and the rows agree. ``counting`` counts the rows in that snapshot.
    """

    job_id: str
    report: Report[Any]
    filters: ReportFilters
    context: ReportContext
    organization_name: str
    generated_by: str
    generated_at: datetime
    database: Database
    snapshot_id: str
    kinds: Mapping[str, ColumnKind]
    counting: asyncio.Task[int]
    # The snapshot was exported on the read replica (it must be imported there too).
    snapshot_on_replica: bool = False


FormatWriter = Callable[
    [ExportDocument, psycopg.AsyncConnection[object], ExportQuery, Partial, ProgressCallback],
    Awaitable[WriteResult],
]


@dataclass(frozen=True)
class ExportFormatSpec:
    """One export format: its name on the wire, file extension, media type and writer."""

    name: str
    media_type: str
    writer: FormatWriter
    streams_rows: bool = True  # False: a document of figures (PDF), not of rows


async def job_names(session: AsyncSession, organization_id: str, user_id: str) -> tuple[str, str]:
    """The organization's name and the requesting user's "Name <email>", for documents."""
    row = (
        await session.execute(
            text(
                "SELECT o.name AS org, u.display_name AS user_name, u.email "
                "FROM organizations o LEFT JOIN users u ON u.organization_id = o.id "
                "AND u.id = :user WHERE o.id = :org"
            ),
            {"org": organization_id, "user": user_id},
        )
    ).one()
    user = f"{row.user_name} <{row.email}>" if row.user_name else user_id
    return str(row.org), user
