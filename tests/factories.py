"""Typed factory functions, one per table, with keyword overrides.

Each factory inserts through the owner session and commits, so the API (on its own
connections) sees the row at once. Defaults are valid against every CHECK constraint.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from pivotal_reporting.auth.principal import EXPORT_REPORTS, VIEW_AUDIT_LOGS, VIEW_REPORTS
from pivotal_reporting.auth.tokens import mint_token
from pivotal_reporting.config import Settings
from pivotal_reporting.models import (
    AuditLog,
    Customer,
    ExportJob,
    Invoice,
    Organization,
    Payment,
    Project,
    Quote,
    Role,
    RolePermission,
    TimeEntry,
    User,
    UserRole,
)

M = TypeVar("M")
_counter = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(5)}_{next(_counter)}"


def _save(db: Session, obj: M) -> M:
    db.add(obj)
    db.commit()
    return obj


def create_organization(db: Session, **overrides: Any) -> Organization:
    values: dict[str, Any] = {
        "id": unique("org"),
        "name": "Test Org",
        "base_currency": "USD",
        "timezone": "UTC",
        "settings": {},
    }
    return _save(db, Organization(**(values | overrides)))


def create_user(
    db: Session, *, org: Organization, permissions: tuple[str, ...] = (), **overrides: Any
) -> User:
    """A user; with ``permissions``, also a role holding exactly those."""
    user_id = overrides.pop("id", unique("usr"))
    values: dict[str, Any] = {
        "id": user_id,
        "organization_id": org.id,
        "email": f"{user_id}@example.test",
        "display_name": f"User {user_id}",
        "status": "active",
    }
    user = _save(db, User(**(values | overrides)))
    if permissions:
        role = create_role(db, org=org, permissions=permissions)
        _save(db, UserRole(organization_id=org.id, user_id=user.id, role_id=role.id))
    return user


def create_role(
    db: Session, *, org: Organization, permissions: tuple[str, ...] = (), **overrides: Any
) -> Role:
    role = _save(
        db,
        Role(
            **(
                {"id": unique("role"), "organization_id": org.id, "name": unique("role")}
                | overrides
            )
        ),
    )
    for permission in permissions:
        db.add(RolePermission(organization_id=org.id, role_id=role.id, permission_id=permission))
    db.commit()
    return role


def create_customer(db: Session, *, org: Organization, **overrides: Any) -> Customer:
    values: dict[str, Any] = {
        "id": unique("cus"),
        "organization_id": org.id,
        "name": unique("Customer"),
    }
    return _save(db, Customer(**(values | overrides)))


def create_project(
    db: Session, *, org: Organization, customer: Customer | None = None, **overrides: Any
) -> Project:
    customer = customer or create_customer(db, org=org)
    values: dict[str, Any] = {
        "id": unique("prj"),
        "organization_id": org.id,
        "customer_id": customer.id,
        "name": unique("Project"),
        "status": "active",
    }
    return _save(db, Project(**(values | overrides)))


def create_quote(
    db: Session,
    *,
    org: Organization,
    customer: Customer | None = None,
    project: Project | None = None,
    **overrides: Any,
) -> Quote:
    customer = customer or create_customer(db, org=org)
    created = overrides.pop("created_at", datetime(2024, 1, 10, tzinfo=UTC))
    status = overrides.pop("status", "accepted")
    decided = overrides.pop(
        "decided_at",
        created + timedelta(days=3) if status in ("accepted", "rejected", "expired") else None,
    )
    values: dict[str, Any] = {
        "id": unique("quo"),
        "organization_id": org.id,
        "quote_number": unique("Q"),
        "customer_id": customer.id,
        "project_id": project.id if project else None,
        "status": status,
        "currency": "USD",
        "total_amount": Decimal("1000.00"),
        "created_at": created,
        "sent_at": created + timedelta(hours=1) if status != "draft" else None,
        "decided_at": decided,
    }
    return _save(db, Quote(**(values | overrides)))


def create_invoice(
    db: Session,
    *,
    org: Organization,
    customer: Customer | None = None,
    project: Project | None = None,
    **overrides: Any,
) -> Invoice:
    customer = customer or create_customer(db, org=org)
    status = overrides.pop("status", "issued")
    total = Decimal(str(overrides.pop("total_amount", "1000.00")))
    paid_default = total if status == "paid" else Decimal("0.00")
    amount_paid = Decimal(str(overrides.pop("amount_paid", paid_default)))
    issue = overrides.pop("issue_date", date(2024, 1, 10))
    values: dict[str, Any] = {
        "id": unique("inv"),
        "organization_id": org.id,
        "invoice_number": unique("INV"),
        "customer_id": customer.id,
        "project_id": project.id if project else None,
        "status": status,
        "currency": "USD",
        "total_amount": total,
        "amount_paid": amount_paid,
        "balance_due": total - amount_paid,
        "issue_date": issue,
        "due_date": issue + timedelta(days=30),
        "paid_at": (
            datetime(issue.year, issue.month, issue.day, tzinfo=UTC) + timedelta(days=20)
            if status == "paid"
            else None
        ),
    }
    return _save(db, Invoice(**(values | overrides)))


def create_payment(
    db: Session,
    *,
    org: Organization,
    customer: Customer | None = None,
    invoice: Invoice | None = None,
    **overrides: Any,
) -> Payment:
    customer = customer or create_customer(db, org=org)
    values: dict[str, Any] = {
        "id": unique("pay"),
        "organization_id": org.id,
        "invoice_id": invoice.id if invoice else None,
        "customer_id": customer.id,
        "amount": Decimal("500.00"),
        "currency": "USD",
        "method": "bank_transfer",
        "status": "completed",
        "paid_at": datetime(2024, 2, 1, 12, tzinfo=UTC),
        "reference": unique("REF"),
    }
    return _save(db, Payment(**(values | overrides)))


def create_time_entry(
    db: Session,
    *,
    org: Organization,
    user: User,
    project: Project | None = None,
    **overrides: Any,
) -> TimeEntry:
    project = project or create_project(db, org=org)
    status = overrides.pop("status", "approved")
    submitted = overrides.pop(
        "submitted_at", datetime(2024, 1, 12, 17, tzinfo=UTC) if status != "draft" else None
    )
    values: dict[str, Any] = {
        "id": unique("te"),
        "organization_id": org.id,
        "user_id": user.id,
        "project_id": project.id,
        "work_date": date(2024, 1, 12),
        "hours": Decimal("8.00"),
        "billable": True,
        "status": status,
        "submitted_at": submitted,
        "approved_at": submitted + timedelta(hours=24)
        if status == "approved" and submitted
        else None,
        "approved_by": None,
        "rejected_at": submitted + timedelta(hours=24)
        if status == "rejected" and submitted
        else None,
    }
    return _save(db, TimeEntry(**(values | overrides)))


def create_export_job(db: Session, *, org: Organization, user: User, **overrides: Any) -> ExportJob:
    values: dict[str, Any] = {
        "id": unique("job"),
        "organization_id": org.id,
        "user_id": user.id,
        "report_type": "quote_cycle_time",
        "format": "csv",
        "status": "pending",
        "filters": {},
        "file_name": "export.csv",
    }
    return _save(db, ExportJob(**(values | overrides)))


def create_audit_log(db: Session, *, org: Organization, **overrides: Any) -> AuditLog:
    """A raw audit row (bypasses the chain writer: for tamper tests only)."""
    values: dict[str, Any] = {
        "organization_id": org.id,
        "user_id": None,
        "action": "test",
        "resource": "test",
        "details": {},
        "created_at": datetime.now(UTC),
        "seq": 1,
        "payload": "{}",
        "prev_hash": "0" * 64,
        "hash": "0" * 64,
    }
    return _save(db, AuditLog(**(values | overrides)))


@dataclass
class Tenant:
    """An organization with one user per access level and their bearer tokens."""

    org: Organization
    viewer: User
    exporter: User
    admin: User
    nobody: User
    settings: Settings

    def token(self, user: User, expires_in: timedelta = timedelta(hours=1)) -> str:
        return mint_token(
            self.settings,
            user_id=user.id,
            organization_id=user.organization_id,
            expires_in=expires_in,
        )

    def headers(self, user: User) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}


def create_tenant(db: Session, settings: Settings, **org_overrides: Any) -> Tenant:
    org = create_organization(db, **org_overrides)
    return Tenant(
        org=org,
        viewer=create_user(db, org=org, permissions=(VIEW_REPORTS,)),
        exporter=create_user(db, org=org, permissions=(VIEW_REPORTS, EXPORT_REPORTS)),
        admin=create_user(db, org=org, permissions=(VIEW_REPORTS, EXPORT_REPORTS, VIEW_AUDIT_LOGS)),
        nobody=create_user(db, org=org),
        settings=settings,
    )
