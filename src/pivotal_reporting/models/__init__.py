"""ORM models: importing this package registers every table on ``Base.metadata``."""

from pivotal_reporting.models.audit_log import AuditChainHead, AuditLog
from pivotal_reporting.models.base import Base, new_id
from pivotal_reporting.models.business import (
    Customer,
    Invoice,
    Payment,
    Project,
    Quote,
    TimeEntry,
)
from pivotal_reporting.models.export_job import ExportJob
from pivotal_reporting.models.export_template import ExportTemplate
from pivotal_reporting.models.rollups import (
    RollupChange,
    RollupChangesConsumed,
    RollupNameVersion,
    RollupPeriod,
    report_rollups,
)
from pivotal_reporting.models.tenancy import (
    Organization,
    Permission,
    Role,
    RolePermission,
    User,
    UserRole,
)
from pivotal_reporting.models.web_session import WebSession, WebSigninLink

__all__ = [
    "AuditChainHead",
    "AuditLog",
    "Base",
    "Customer",
    "ExportJob",
    "ExportTemplate",
    "Invoice",
    "Organization",
    "Payment",
    "Permission",
    "Project",
    "Quote",
    "Role",
    "RolePermission",
    "RollupChange",
    "RollupChangesConsumed",
    "RollupNameVersion",
    "RollupPeriod",
    "TimeEntry",
    "User",
    "UserRole",
    "WebSession",
    "WebSigninLink",
    "new_id",
    "report_rollups",
]
