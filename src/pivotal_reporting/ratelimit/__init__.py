"""Request rate limits per user (``limits`` async API), as ASGI middleware."""

from pivotal_reporting.ratelimit.middleware import RateLimitMiddleware

__all__ = ["RateLimitMiddleware"]
