"""The Report contract shared by summaries (``/v1/reports/summary/*``) and exports.

Each report module owns its filter schema, its summary SQL, its export columns and its
export row query, and registers one instance in ``registry.py``; the base class here
holds what they share (conditions from filters, the export query, the choice between
the rows and the rollups). The runner
(``service.py``) applies the tenant scope; a report only receives an already-scoped
session and a ``ReportContext``.

All SQL is written with psycopg placeholders (``%(name)s``): summaries run it through the
driver (``exec_driver_sql``), exports hand it to ``COPY (...) TO STDOUT``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from psycopg import sql
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel
from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.errors import InvalidInput
from pivotal_reporting.reports.source import ExportRows, NameLookup, Source, Window
from pivotal_reporting.reports.sql import Conditions
from pivotal_reporting.rls import ORG_SETTING as CURRENT_ORG
from pivotal_reporting.validation import Id, Instant


class ReportFilters(BaseModel):
    """Filters common to every report; camelCase on the wire, unknown fields refused.

    Windows are half-open ``[fromDate, toDate)`` of ``Instant``s (ISO-8601 with an offset,
    in a bounded range); ids are ``Id``s (validation.py).
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
    )

    organization_id: Id | None = Field(
        default=None, description="Must be the caller's own organization, if given (else 403)."
    )
    from_date: Instant | None = Field(
        default=None, description="Window start, inclusive; ISO-8601 with an offset."
    )
    to_date: Instant | None = Field(
        default=None, description="Window end, exclusive; ISO-8601 with an offset."
    )

    @field_validator("to_date")
    @classmethod
    def _window_is_ordered(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("from_date")
        if value is not None and start is not None and not start < value:
            raise ValueError("toDate must be later than fromDate")
        return value

    def applied(self) -> dict[str, Any]:
        """The filters as given, for the response envelope (camelCase, no unset/None)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)


@dataclass(frozen=True)
class ReportContext:
    """What a report may know about the caller: never more than its own organization."""

    organization_id: str
    user_id: str
    timezone: str  # IANA name, e.g. "America/New_York": months and calendar dates
    base_currency: str  # ISO 4217: headline amounts unless a currency filter is given
    now: datetime  # aware; "as of" for open invoices and pending approvals


@dataclass(frozen=True)
class ExportQuery:
    """A row query for ``COPY (sql) TO STDOUT``.

    ``sql`` uses psycopg placeholders (``%(name)s``, bound client-side by ``cursor.copy``)
    and selects exactly ``columns``, in order, already filtered to the organization. The
    values are the raw stored values (typed: numbers, booleans, dates); a format that needs
    a guard (CSV against spreadsheet formulas) adds it in its writer.
    """

    sql: str
    params: dict[str, Any] = field(default_factory=dict)
    columns: tuple[str, ...] = ()
    # Text columns that cannot hold user text: a CHECK-constrained vocabulary (status,
    # currency, method) or a server-made format (ISO timestamps, months). The CSV formula
    # guard skips them; every other text column is guarded, so a column a report forgets
    # to list here is guarded, never left open. JSON writes them between quotes without
    # escaping (exports/json_rows.py): they never hold ``"``, ``\`` or a control character.
    closed_text_columns: frozenset[str] = frozenset()
    # ``count(*)`` of the same rows without the joins, the ordering and the cell
    # functions (each join is on a NOT NULL foreign key, so it keeps every row once);
    # without it the count runs ``sql`` itself.
    count_sql: str | None = None
    # ``sql`` without the name columns of ``lookups`` and their joins: CSV and JSON fill
    # the names from per-export maps (exports/name_lookups.py). ``None`` after a choice
    # of ``columns`` (those exports run ``sql``).
    lean_sql: str | None = None
    lookups: tuple[NameLookup, ...] = ()


F = TypeVar("F", bound=ReportFilters)


class Report(ABC, Generic[F]):
    """One report type: its filters (``F``), its summary and its export rows.

    A report declares its rows (``source``, ``window``, ``equals``) and its export
    (``export``); the base turns filters into conditions (``conditions``), builds the
    export query (``export_query``) and picks the summary's path (``summarize``): the
    rows (``summarize_from_rows``) or the rollups (``summarize_from_rollup``, when
    ``reads_rollup``). docs/adding-a-report.md walks through a new one.
    """

    report_type: ClassVar[str]  # e.g. "quote_cycle_time" (export API, metrics, audit)
    path: ClassVar[str]  # e.g. "quote-cycle-time" (summary URL)
    title: ClassVar[str]  # one line for the OpenAPI operation
    filters_model: ClassVar[type[ReportFilters]]
    summary_model: ClassVar[type[BaseModel]]
    response_model: ClassVar[type[BaseModel]]  # the envelope, for OpenAPI
    # Id filters that must name a row of the caller's organization: field → table.
    references: ClassVar[Mapping[str, str]] = {}
    source: ClassVar[Source]  # the table read, e.g. quotes q
    window: ClassVar[Window]  # the column [fromDate, toDate) applies to
    # Filters that keep the rows whose column equals their value: field → column.
    equals: ClassVar[Mapping[str, str]] = {}
    export: ClassVar[ExportRows]

    async def check_references(
        self, session: AsyncSession, filters: F, *, field_prefix: str = ""
    ) -> None:
        """Raise ``InvalidInput`` naming each id filter that is not in this organization.

        Runs in the tenant session, so another organization's id is invisible (row-level
        security) and answers exactly like an id that does not exist.
        """
        wanted = {
            name: (table, value)
            for name, table in self.references.items()
            if (value := getattr(filters, name)) is not None
        }
        if not wanted:
            return
        probe = sql.SQL(
            "EXISTS (SELECT 1 FROM {table} WHERE organization_id = {org} AND id = {id}) AS {name}"
        )
        probes = sql.SQL(", ").join(
            probe.format(
                table=sql.Identifier(table),
                org=sql.SQL(CURRENT_ORG),
                id=sql.Placeholder(name),
                name=sql.Identifier(name),
            )
            for name, (table, _) in wanted.items()
        )
        params = {name: value for name, (_, value) in wanted.items()}
        statement = sql.SQL("SELECT {probes}").format(probes=probes).as_string(None)
        found = (await fetch_one(session, statement, params)) or {}
        errors = [
            {
                "field": f"{field_prefix}{to_camel(name)}",
                "message": "No such record in your organization.",
            }
            for name in wanted
            if not found.get(name)
        ]
        if errors:
            fields = ", ".join(error["field"] for error in errors)
            raise InvalidInput(f"Unknown reference: {fields}.", errors=errors)

    def reads_rollup(self, filters: F) -> bool:
        """Whether a summary with these filters reads the rollups (reports/rollups/);
        else the rows alone. Both give the same figures; tests compare them."""
        return False

    def depends_on_now(self, filters: F) -> bool:
        """Whether ``clock_free_part`` with these filters changes with the current time
        (then it is never cached, ``cache.py``). The safe default; reports whose part
        depends only on their rows and filters say so."""
        return True

    def cache_scope(self, ctx: ReportContext, filters: F) -> str:
        """What besides the filters and the data a cached ``clock_free_part`` depends
        on, as text for its cache key (e.g. today's date); none by default."""
        return ""

    def params(self, ctx: ReportContext, filters: F) -> dict[str, Any]:
        """Parameters every query of the report binds besides the filters' own."""
        return {"org": ctx.organization_id}

    def narrow(self, where: Conditions, ctx: ReportContext, filters: F) -> None:
        """Conditions of filters other than the window and ``equals`` (default: none)."""

    def conditions(self, ctx: ReportContext, filters: F) -> Conditions:
        """The SQL conditions (``AND ...``) and parameters of ``filters``: the window,
        then each ``equals`` filter given, then ``narrow``'s."""
        where = Conditions(params=self.params(ctx, filters))
        self.window.narrow(where, filters, ctx.timezone)
        for name, column in self.equals.items():
            where.when(getattr(filters, name), f"{column} = %({name})s", name)
        self.narrow(where, ctx, filters)
        return where

    async def summarize(self, session: AsyncSession, ctx: ReportContext, filters: F) -> BaseModel:
        """The ``summary`` object, computed in PostgreSQL in a few set-based queries:
        from the rollups when ``reads_rollup``, else from the rows. It is
        ``with_clock`` of ``clock_free_part``, the split the summary cache uses."""
        part = await self.clock_free_part(session, ctx, filters)
        return self.with_clock(ctx, filters, part)

    async def clock_free_part(self, session: AsyncSession, ctx: ReportContext, filters: F) -> Any:
        """What the summary is made of that does not move with the clock (unless
        ``depends_on_now``): the part the summary cache keeps. By default the whole
        summary, from the rollups when ``reads_rollup``, else from the rows."""
        if self.reads_rollup(filters):
            return await self.summarize_from_rollup(session, ctx, filters)
        return await self.summarize_from_rows(session, ctx, filters)

    def with_clock(self, ctx: ReportContext, filters: F, part: Any) -> BaseModel:
        """The summary from ``clock_free_part`` and ``ctx.now`` (a report whose figures
        age, such as days outstanding, derives them here; ``part`` is never changed, it
        may be a cached one). By default ``part`` is the summary."""
        assert isinstance(part, BaseModel)
        return part

    @abstractmethod
    async def summarize_from_rows(
        self, session: AsyncSession, ctx: ReportContext, filters: F
    ) -> BaseModel:
        """The summary read from the source rows (any filters)."""

    async def summarize_from_rollup(
        self, session: AsyncSession, ctx: ReportContext, filters: F
    ) -> BaseModel:
        """The summary read from the rollups (only filters ``reads_rollup`` accepts);
        a report without a rollup reads its rows."""
        return await self.summarize_from_rows(session, ctx, filters)

    def export_query(self, ctx: ReportContext, filters: F) -> ExportQuery:
        """The export's row query and columns for these filters."""
        where = self.conditions(ctx, filters)
        return ExportQuery(
            sql=self.export.select_sql(self.source, where),
            params=where.params,
            columns=self.export.names,
            closed_text_columns=self.export.closed_text,
            count_sql=self.source.count_sql(where),
            lean_sql=self.export.lean_select_sql(self.source, where),
            lookups=tuple(self.export.lookups),
        )


async def fetch_all(
    session: AsyncSession, sql: str, params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Run psycopg-style SQL (``%(name)s``) in the session's transaction; rows as dicts."""
    connection = await session.connection()
    result = await connection.exec_driver_sql(sql, dict(params))
    keys = tuple(result.keys())  # once: a RowMapping per row is slow at thousands of bins
    return [dict(zip(keys, row, strict=True)) for row in result.all()]


async def fetch_one(
    session: AsyncSession, sql: str, params: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The first row of ``fetch_all`` (``None`` when there is none)."""
    rows = await fetch_all(session, sql, params)
    return rows[0] if rows else None
