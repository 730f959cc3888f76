"""Request rate limits (per user, ``limits`` async API) and the per-organization export cap."""

from pivotal_reporting.ratelimit.capacity import ensure_export_capacity
from pivotal_reporting.ratelimit.middleware import RateLimitMiddleware

__all__ = ["RateLimitMiddleware", "ensure_export_capacity"]
