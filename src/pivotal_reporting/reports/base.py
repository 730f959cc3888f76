"""The Report contract shared by summaries (``/v1/reports/summary/*``) and exports.

Each report module owns its filter schema, its summary SQL, its export columns and its
export row query, and registers one instance in ``registry.py``. The runner applies the
tenant scope; a report only receives an already-scoped session and a ``ReportContext``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from sqlalchemy.ext.asyncio import AsyncSession


class ReportFilters(BaseModel):
    """Filters common to every report; camelCase on the wire, unknown fields refused.

    Windows are half-open ``[fromDate, toDate)``; naive date-times are rejected.
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True, extra="forbid", frozen=True
    )

    organization_id: str | None = Field(default=None, description="Must be the caller's own, if given.")
    from_date: AwareDatetime | None = None
    to_date: AwareDatetime | None = None

    @model_validator(mode="after")
    def _window_is_ordered(self) -> ReportFilters:
        if self.from_date and self.to_date and not self.from_date < self.to_date:
            raise ValueError("fromDate must be earlier than toDate")
        return self


@dataclass(frozen=True)
class ReportContext:
    """What a report may know about the caller: never more than its own organization."""

    organization_id: str
    user_id: str
    timezone: str
    base_currency: str
    now: datetime


@dataclass(frozen=True)
class ExportQuery:
    """A row query for ``COPY (sql) TO STDOUT``.

    ``sql`` uses psycopg placeholders (``%(name)s``, bound client-side by ``cursor.copy``)
    and selects exactly ``columns``, in order, already filtered to the organization.
    """

    sql: str
    params: dict[str, Any] = field(default_factory=dict)
    columns: tuple[str, ...] = ()


class Report(ABC):
    """One report type: its filters, its summary and its export rows."""

    report_type: ClassVar[str]  # e.g. "quote_cycle_time" (export API, metrics, audit)
    path: ClassVar[str]  # e.g. "quote-cycle-time" (summary URL)
    filters_model: ClassVar[type[ReportFilters]]
    summary_model: ClassVar[type[BaseModel]]

    @abstractmethod
    async def check_references(self, session: AsyncSession, filters: ReportFilters) -> None:
        """Raise ``InvalidInput`` naming the field when an id filter is not in this org."""

    @abstractmethod
    async def summarize(self, session: AsyncSession, ctx: ReportContext, filters: ReportFilters) -> BaseModel:
        """The ``summary`` object, computed in PostgreSQL in a few set-based queries."""

    @abstractmethod
    def export_query(self, ctx: ReportContext, filters: ReportFilters) -> ExportQuery:
        """The export's row query and columns for these filters."""
