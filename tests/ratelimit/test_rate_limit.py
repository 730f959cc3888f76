"""Rate limits: per-user budget, IETF headers, 429 problem+json, exempt routes, Redis."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
import redis

from tests.factories import Tenant
from tests.server import METRICS_HEADERS, ServerThread

REDIS_URL = "redis://127.0.0.1:6379/0"
POLICY = re.compile(r'^"per-user";q=(\d+);w=60$')
STATE = re.compile(r'^"per-user";r=(\d+);t=(\d+)$')


def _remaining(response: httpx.Response) -> int:
    match = STATE.match(response.headers["RateLimit"])
    assert match, response.headers["RateLimit"]
    return int(match.group(1))


def _exhaust(client: httpx.Client, headers: dict[str, str], limit: int) -> httpx.Response:
    for expected_remaining in range(limit - 1, -1, -1):
        response = client.get("/v1/me", headers=headers)
        assert response.status_code == 200
        assert POLICY.match(response.headers["RateLimit-Policy"]).group(1) == str(limit)  # type: ignore[union-attr]
        assert _remaining(response) == expected_remaining
    return client.get("/v1/me", headers=headers)


def _check_refusal(response: httpx.Response) -> None:
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert _remaining(response) == 0
    assert "RateLimit-Policy" in response.headers


def test_budget_per_user_then_429(
    start_server: Callable[..., ServerThread], tenant: Tenant, key_prefix: str
) -> None:
    server = start_server(rate_limit_per_minute=3, rate_limit_key_prefix=key_prefix)
    with httpx.Client(base_url=server.base_url) as client:
        _check_refusal(_exhaust(client, tenant.headers(tenant.viewer), 3))
        # Refused before routing, yet labelled by its route template.
        assert 'route="/v1/me",status="429"' in client.get("/metrics", headers=METRICS_HEADERS).text
        # Another user of the same organization has a budget of their own.
        assert client.get("/v1/me", headers=tenant.headers(tenant.exporter)).status_code == 200


def test_public_routes_are_not_limited(
    start_server: Callable[..., ServerThread], tenant: Tenant, key_prefix: str
) -> None:
    server = start_server(rate_limit_per_minute=1, rate_limit_key_prefix=key_prefix)
    with httpx.Client(base_url=server.base_url) as client:
        for path in ("/health", "/health/ready", "/metrics", "/openapi.json", "/docs"):
            for _ in range(3):
                headers = METRICS_HEADERS if path == "/metrics" else {}
                response = client.get(path, headers=headers)
                assert response.status_code == 200, path
                assert "RateLimit" not in response.headers


def test_anonymous_requests_are_keyed_by_address(
    start_server: Callable[..., ServerThread], tenant: Tenant, key_prefix: str
) -> None:
    server = start_server(rate_limit_per_minute=2, rate_limit_key_prefix=key_prefix)
    with httpx.Client(base_url=server.base_url) as client:
        assert client.get("/v1/me").status_code == 401
        bad = {"Authorization": "Bearer not-a-token"}
        unauthorized = client.get("/v1/me", headers=bad)
        assert unauthorized.status_code == 401
        assert _remaining(unauthorized) == 0
        _check_refusal(client.get("/v1/me"))
        # A valid token is keyed by its user, not by the exhausted address.
        assert client.get("/v1/me", headers=tenant.headers(tenant.viewer)).status_code == 200


def test_redis_storage_is_shared_between_processes(
    start_server: Callable[..., ServerThread], tenant: Tenant, key_prefix: str
) -> None:
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    overrides = {
        "rate_limit_per_minute": 4,
        "rate_limit_storage_url": REDIS_URL,
        "rate_limit_key_prefix": key_prefix,
    }
    first, second = start_server(**overrides), start_server(**overrides)
    headers = tenant.headers(tenant.viewer)
    with httpx.Client(base_url=first.base_url) as a, httpx.Client(base_url=second.base_url) as b:
        assert _remaining(a.get("/v1/me", headers=headers)) == 3
        assert _remaining(b.get("/v1/me", headers=headers)) == 2
        assert _remaining(a.get("/v1/me", headers=headers)) == 1
        assert _remaining(b.get("/v1/me", headers=headers)) == 0
        _check_refusal(a.get("/v1/me", headers=headers))
        _check_refusal(b.get("/v1/me", headers=headers))
    keys = redis.Redis.from_url(REDIS_URL).keys(f"{key_prefix}*")
    assert keys, "the limiter's keys carry the configured prefix"
    redis.Redis.from_url(REDIS_URL).delete(*keys)


def test_redis_outage_answers_503_problem(
    start_server: Callable[..., ServerThread], tenant: Tenant, key_prefix: str
) -> None:
    server = start_server(
        rate_limit_storage_url="redis://127.0.0.1:1/0", rate_limit_key_prefix=key_prefix
    )
    with httpx.Client(base_url=server.base_url) as client:
        response = client.get("/v1/me", headers=tenant.headers(tenant.viewer))
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert client.get("/health").status_code == 200


def test_forwarded_for_is_ignored_unless_the_proxy_is_configured(
    start_server: Callable[..., ServerThread], key_prefix: str
) -> None:
    # Default: no proxy is trusted, so a client cannot pick the address it is keyed by.
    server = start_server(rate_limit_per_minute=2, rate_limit_key_prefix=key_prefix)
    with httpx.Client(base_url=server.base_url) as client:
        for n in range(2):
            spoofed = {"X-Forwarded-For": f"203.0.113.{n}"}
            assert client.get("/v1/me", headers=spoofed).status_code == 401
        _check_refusal(client.get("/v1/me", headers={"X-Forwarded-For": "203.0.113.99"}))
    # PIVOTAL_FORWARDED_ALLOW_IPS names the proxy: its X-Forwarded-For is the client.
    proxied = start_server(
        rate_limit_per_minute=2,
        rate_limit_key_prefix=f"{key_prefix}-proxied",
        forwarded_allow_ips="127.0.0.1",
    )
    with httpx.Client(base_url=proxied.base_url) as client:
        for n in range(4):
            forwarded = {"X-Forwarded-For": f"203.0.113.{n}"}
            assert client.get("/v1/me", headers=forwarded).status_code == 401, n
        assert client.get("/v1/me", headers={"X-Forwarded-For": "203.0.113.0"}).status_code == 401
        _check_refusal(client.get("/v1/me", headers={"X-Forwarded-For": "203.0.113.0"}))


def test_serve_trusts_no_proxy_by_default() -> None:
    from pivotal_reporting.config import Settings
    from pivotal_reporting.serving import proxy_options

    # (Not uvicorn.Config itself: building one reconfigures uvicorn's loggers globally.)
    assert proxy_options(Settings())["proxy_headers"] is False
    configured = proxy_options(Settings(forwarded_allow_ips="10.0.0.5, 10.0.1.0/24"))
    assert configured == {"proxy_headers": True, "forwarded_allow_ips": "10.0.0.5, 10.0.1.0/24"}
