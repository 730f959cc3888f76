"""Customers, projects, quotes, invoices, payments and time entries.

Every table carries ``organization_id``; references to another business row are
composite ``(organization_id, id)`` foreign keys, so a row can never point into
another tenant.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    CHAR,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Numeric,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from pivotal_reporting.models.base import (
    CURRENCY_CHECK,
    Base,
    created_at_column,
    organization_fk,
    status_check,
    tenant_pk,
    updated_at_column,
)

QUOTE_STATUSES = ("draft", "sent", "accepted", "rejected", "expired", "cancelled")
DECIDED_QUOTE_STATUSES = ("accepted", "rejected", "expired")
INVOICE_STATUSES = ("draft", "issued", "part_paid", "paid", "void", "written_off")
PAYMENT_METHODS = ("bank_transfer", "credit_card", "check", "cash", "other")
PAYMENT_STATUSES = ("completed", "pending", "failed", "refunded")
TIME_ENTRY_STATUSES = ("draft", "submitted", "approved", "rejected")


def tenant_fk(column: str, table: str) -> ForeignKeyConstraint:
    """``(organization_id, column)`` → ``table(organization_id, id)``."""
    return ForeignKeyConstraint(
        ["organization_id", column], [f"{table}.organization_id", f"{table}.id"]
    )


def tenant_index(table: str, *columns: str) -> Index:
    return Index(
        f"ix_{table}_{'_'.join(('organization_id', *columns))}", "organization_id", *columns
    )


def report_index(
    table: str, column: str, include: tuple[str, ...], where: str | None = None
) -> Index:
    """``(organization_id, column) INCLUDE (...)``: a summary report's window, index-only.

    Owned by the reports work (migration 0004); ``reports/`` holds the queries it serves.
    """
    return Index(
        f"ix_{table}_organization_id_{column}",
        "organization_id",
        column,
        postgresql_include=list(include),
        postgresql_where=text(where) if where else None,
    )


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (tenant_pk(),)

    id: Mapped[str] = mapped_column(Text)
    organization_id: Mapped[str] = organization_fk()
    name: Mapped[str] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (
        tenant_pk(),
        tenant_fk("customer_id", "customers"),
        tenant_index("projects", "customer_id"),
        CheckConstraint(status_check("status", ("active", "closed")), name="status"),
    )

    id: Mapped[str] = mapped_column(Text)
    organization_id: Mapped[str] = organization_fk()
    customer_id: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default=text("'active'"))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class Quote(Base):
    __tablename__ = "quotes"
    __table_args__ = (
        tenant_pk(),
        UniqueConstraint("organization_id", "quote_number"),
        tenant_fk("customer_id", "customers"),
        tenant_fk("project_id", "projects"),
        tenant_index("quotes", "customer_id"),
        tenant_index("quotes", "project_id"),
        CheckConstraint(status_check("status", QUOTE_STATUSES), name="status"),
        CheckConstraint(CURRENCY_CHECK, name="currency_iso"),
        CheckConstraint("total_amount >= 0", name="total_amount_non_negative"),
        CheckConstraint(
            "(status IN ('accepted', 'rejected', 'expired')) = (decided_at IS NOT NULL)",
            name="decided_at_iff_decided",
        ),
        CheckConstraint(
            "decided_at IS NULL OR decided_at >= created_at", name="decided_after_created"
        ),
        report_index(
            "quotes",
            "decided_at",
            ("created_at", "status", "customer_id", "project_id"),
            where="decided_at IS NOT NULL",
        ),
    )

    id: Mapped[str] = mapped_column(Text)
    organization_id: Mapped[str] = organization_fk()
    quote_number: Mapped[str] = mapped_column(Text)
    customer_id: Mapped[str] = mapped_column(Text)
    project_id: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    currency: Mapped[str] = mapped_column(CHAR(3))
    total_amount: Mapped[Decimal] = mapped_column(Numeric(15, 2))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[date | None] = mapped_column(Date)


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        tenant_pk(),
        UniqueConstraint("organization_id", "invoice_number"),
        tenant_fk("customer_id", "customers"),
        tenant_fk("project_id", "projects"),
        tenant_fk("quote_id", "quotes"),
        tenant_index("invoices", "customer_id"),
        tenant_index("invoices", "project_id"),
        tenant_index("invoices", "quote_id"),
        CheckConstraint(status_check("status", INVOICE_STATUSES), name="status"),
        CheckConstraint(CURRENCY_CHECK, name="currency_iso"),
        CheckConstraint("total_amount >= 0 AND amount_paid >= 0", name="amounts_non_negative"),
        CheckConstraint("balance_due = total_amount - amount_paid", name="balance_due_consistent"),
        CheckConstraint("due_date >= issue_date", name="due_after_issue"),
        CheckConstraint("(status = 'paid') = (paid_at IS NOT NULL)", name="paid_at_iff_paid"),
        report_index(
            "invoices",
            "issue_date",
            (
                "status",
                "customer_id",
                "currency",
                "total_amount",
                "balance_due",
                "due_date",
                "paid_at",
            ),
        ),
        # Overdue-only summaries read open invoices alone (migration 0007).
        Index(
            "ix_invoices_organization_id_issue_date_open",
            "organization_id",
            "issue_date",
            postgresql_include=[
                "customer_id",
                "currency",
                "total_amount",
                "balance_due",
                "due_date",
            ],
            postgresql_where=text("status IN ('issued', 'part_paid')"),
        ),
    )

    id: Mapped[str] = mapped_column(Text)
    organization_id: Mapped[str] = organization_fk()
    invoice_number: Mapped[str] = mapped_column(Text)
    customer_id: Mapped[str] = mapped_column(Text)
    project_id: Mapped[str | None] = mapped_column(Text)
    quote_id: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    currency: Mapped[str] = mapped_column(CHAR(3))
    total_amount: Mapped[Decimal] = mapped_column(Numeric(15, 2))
    amount_paid: Mapped[Decimal] = mapped_column(Numeric(15, 2), server_default=text("0"))
    balance_due: Mapped[Decimal] = mapped_column(Numeric(15, 2))
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        tenant_pk(),
        tenant_fk("invoice_id", "invoices"),
        tenant_fk("customer_id", "customers"),
        tenant_index("payments", "invoice_id"),
        tenant_index("payments", "customer_id"),
        CheckConstraint(status_check("method", PAYMENT_METHODS), name="method"),
        CheckConstraint(status_check("status", PAYMENT_STATUSES), name="status"),
        CheckConstraint(CURRENCY_CHECK, name="currency_iso"),
        CheckConstraint("amount > 0", name="amount_positive"),
        report_index(
            "payments",
            "paid_at",
            ("customer_id", "method", "currency", "amount"),
            where="status = 'completed'",
        ),
    )

    id: Mapped[str] = mapped_column(Text)
    organization_id: Mapped[str] = organization_fk()
    invoice_id: Mapped[str | None] = mapped_column(Text)
    customer_id: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(Numeric(15, 2))
    currency: Mapped[str] = mapped_column(CHAR(3))
    method: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    paid_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reference: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()


class TimeEntry(Base):
    __tablename__ = "time_entries"
    __table_args__ = (
        tenant_pk(),
        tenant_fk("user_id", "users"),
        tenant_fk("project_id", "projects"),
        tenant_fk("approved_by", "users"),
        tenant_index("time_entries", "user_id"),
        tenant_index("time_entries", "project_id"),
        tenant_index("time_entries", "approved_by"),
        CheckConstraint(status_check("status", TIME_ENTRY_STATUSES), name="status"),
        CheckConstraint("hours > 0 AND hours <= 24", name="hours_range"),
        CheckConstraint(
            "(status = 'approved') = (approved_at IS NOT NULL)", name="approved_at_iff_approved"
        ),
        CheckConstraint(
            "(status = 'rejected') = (rejected_at IS NOT NULL)", name="rejected_at_iff_rejected"
        ),
        CheckConstraint(
            "status = 'draft' OR submitted_at IS NOT NULL", name="submitted_unless_draft"
        ),
        report_index(
            "time_entries",
            "work_date",
            ("user_id", "project_id", "status", "hours", "billable", "submitted_at", "approved_at"),
        ),
        # Pending approvals are read from the rows (they depend on "now"): migration 0007.
        Index(
            "ix_time_entries_organization_id_work_date_submitted",
            "organization_id",
            "work_date",
            postgresql_include=["hours", "submitted_at"],
            postgresql_where=text("status = 'submitted'"),
        ),
    )

    id: Mapped[str] = mapped_column(Text)
    organization_id: Mapped[str] = organization_fk()
    user_id: Mapped[str] = mapped_column(Text)
    project_id: Mapped[str] = mapped_column(Text)
    work_date: Mapped[date] = mapped_column(Date)
    hours: Mapped[Decimal] = mapped_column(Numeric(6, 2))
    billable: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    status: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    approved_by: Mapped[str | None] = mapped_column(Text)
    rejected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
