"""Report rollups (migration 0007; see ``reports/rollups/``): derived data only.

``report_rollups`` holds per-quarter, per-month and per-day grouped partial aggregates of the summary
reports, ``rollup_periods`` which periods are built (and in which time zone), ``rollup_changes``
the trigger-written log of source rows changed since.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    Table,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from pivotal_reporting.models.base import Base, created_at_column, tenant_pk

# One group of one facet of a report for one local month or day (a heap without a key: it is
# only ever read by range and rebuilt per month). Columns per facet are documented by
# each report module.
report_rollups = Table(
    "report_rollups",
    Base.metadata,
    Column(
        "organization_id",
        Text,
        ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("report_type", Text, nullable=False),
    Column("grain", Text, nullable=False),
    Column("period", Date, nullable=False),
    Column("facet", Text, nullable=False),
    Column("key1", Text),
    Column("key2", Text),
    Column("key3", Text),
    Column("day1", Date),
    Column("day2", Date),
    Column("flag", Boolean),
    Column("bin", Integer),
    Column("n", BigInteger, nullable=False),
    Column("total", Float),
    Column("low", Float),
    Column("high", Float),
    Column("amount", Numeric),
    Column("amount2", Numeric),
    Index(
        "ix_report_rollups_lookup",
        "organization_id",
        "report_type",
        "facet",
        "grain",
        "period",
        "key2",  # a facet keyed by what a filter compares here finds only those (0014)
        "bin",
        postgresql_include=[
            "key1",
            "key3",
            "day1",
            "day2",
            "flag",
            "n",
            "total",
            "low",
            "high",
            "amount",
            "amount2",
        ],
    ),
)


class RollupPeriod(Base):
    """A built quarter, month or day: fresh while no change is logged within a day of it."""

    __tablename__ = "rollup_periods"
    __table_args__ = (
        CheckConstraint(
            "grain = 'day' OR (grain = 'month' AND period = date_trunc('month', period)::date)"
            " OR (grain = 'quarter' AND period = date_trunc('quarter', period)::date)",
            name="grain",
        ),
    )

    organization_id: Mapped[str] = mapped_column(
        Text, ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    report_type: Mapped[str] = mapped_column(Text, primary_key=True)
    grain: Mapped[str] = mapped_column(Text, primary_key=True)
    period: Mapped[date] = mapped_column(Date, primary_key=True)
    timezone: Mapped[str] = mapped_column(Text)
    definition: Mapped[str] = mapped_column(Text)  # digest of the facet SQL it was built by
    names_version: Mapped[int] = mapped_column(BigInteger)  # RollupNameVersion at build
    refreshed_at: Mapped[datetime] = created_at_column()


class RollupChange(Base):
    """A UTC date of a report's source rows that changed (no foreign key: a deleted
    organization's cascade is logged too, and the refresh drops it)."""

    __tablename__ = "rollup_changes"
    __table_args__ = (
        tenant_pk(),
        Index(
            "ix_rollup_changes_organization_id_report_type_day",
            "organization_id",
            "report_type",
            "day",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity())
    organization_id: Mapped[str] = mapped_column(Text)
    report_type: Mapped[str] = mapped_column(Text)
    day: Mapped[date] = mapped_column(Date)


class RollupNameVersion(Base):
    """Bumped by renaming or deleting a project, customer or user (no foreign key: a
    deleted organization's cascade bumps it too)."""

    __tablename__ = "rollup_name_versions"

    organization_id: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class RollupChangesConsumed(Base):
    """How many ``rollup_changes`` rows a refresh has deleted, per organization and report
    (kept by a trigger on the log). With the log rows still there it counts every change
    ever logged: a number that only grows, which the summary cache reads as a data
    version (``reports/cache.py``). No foreign key, like the log."""

    __tablename__ = "rollup_changes_consumed"

    organization_id: Mapped[str] = mapped_column(Text, primary_key=True)
    report_type: Mapped[str] = mapped_column(Text, primary_key=True)
    consumed: Mapped[int] = mapped_column(BigInteger)
