"""OpenID Connect sign-in against real providers on loopback (docs/oidc.md).

The API runs with ``PIVOTAL_OIDC_ISSUER`` set, in its own server, and fetches discovery
and keys over HTTP from ``oidc-provider-mock`` (RS256, its real authorization-code flow)
or from ``KeyServer`` (keys the test rotates, ES256).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from pivotal_reporting.app import create_app
from pivotal_reporting.auth.oidc import oidc_user_id
from pivotal_reporting.auth.principal import EXPORT_REPORTS, VIEW_AUDIT_LOGS, VIEW_REPORTS
from pivotal_reporting.auth.tokens import mint_token
from pivotal_reporting.config import Settings
from tests.auth.oidc_servers import KeyServer, MockProvider, SigningKey
from tests.factories import create_organization, unique
from tests.server import ServerThread, free_port

CLIENT_ID = "pivotal-dashboard"
ROLE_PERMISSIONS = {
    "finance": [VIEW_REPORTS, EXPORT_REPORTS],
    "auditor": [VIEW_REPORTS, VIEW_AUDIT_LOGS],
}
WINDOW = {"fromDate": "2024-01-01T00:00:00Z", "toDate": "2024-02-01T00:00:00Z"}
SUMMARY = "/v1/reports/summary/payments-received"


def oidc_settings(settings: Settings, issuer: str, **overrides: Any) -> Settings:
    return settings.model_copy(
        update={
            "oidc_issuer": issuer,
            "oidc_audience": CLIENT_ID,
            "oidc_role_permissions": ROLE_PERMISSIONS,
            "worker_in_process": False,
            "db_pool_size": 3,
        }
        | overrides
    )


@pytest.fixture(scope="module")
def provider_api(settings: Settings, provider: MockProvider) -> Iterator[httpx.Client]:
    app = create_app(oidc_settings(settings, provider.issuer))
    with ServerThread(app) as server, httpx.Client(base_url=server.base_url, timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def key_server() -> Iterator[KeyServer]:
    with KeyServer() as server:
        yield server


@pytest.fixture(scope="module")
def key_api(settings: Settings, key_server: KeyServer) -> Iterator[httpx.Client]:
    app = create_app(
        oidc_settings(
            settings,
            key_server.issuer,
            oidc_jwks_cache_seconds=1,
            oidc_jwks_min_refresh_seconds=0,
            oidc_org_claim="tenant.id",
            oidc_roles_claim="realm_access.roles",
        )
    )
    with ServerThread(app) as server, httpx.Client(base_url=server.base_url, timeout=60) as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def provider_token(
    provider: MockProvider, org: str, roles: list[str], *, client_id: str = CLIENT_ID
) -> tuple[str, str]:
    sub = unique("person")
    provider.set_user(
        sub, {"email": f"{sub}@example.com", "name": f"Person {sub}", "org": org, "roles": roles}
    )
    return sub, provider.id_token(sub, client_id=client_id)


def provisioned(owner_engine: Engine, org: str) -> tuple[list[Any], list[Any]]:
    with owner_engine.connect() as conn:
        users = list(
            conn.execute(
                text("SELECT id, email, display_name FROM users WHERE organization_id = :o"),
                {"o": org},
            )
        )
        events = list(
            conn.execute(
                text(
                    "SELECT user_id, resource_id, details FROM audit_logs "
                    "WHERE organization_id = :o AND action = 'user_provisioned'"
                ),
                {"o": org},
            )
        )
    return users, events


def test_sign_in_maps_roles_to_permissions(
    provider_api: httpx.Client, provider: MockProvider, db: Session
) -> None:
    org = create_organization(db)
    sub, token = provider_token(provider, org.id, ["finance", "auditor"])
    me = provider_api.get("/v1/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["organization"]["id"] == org.id
    assert body["user"]["email"] == f"{sub}@example.com"
    assert body["user"]["displayName"] == f"Person {sub}"
    assert body["permissions"] == sorted({VIEW_REPORTS, EXPORT_REPORTS, VIEW_AUDIT_LOGS})
    summary = provider_api.get(
        SUMMARY, params={"organizationId": org.id} | WINDOW, headers=bearer(token)
    )
    assert summary.status_code == 200, summary.text


def test_first_sight_creates_one_audited_user(
    provider_api: httpx.Client, provider: MockProvider, db: Session, owner_engine: Engine
) -> None:
    org = create_organization(db)
    sub, token = provider_token(provider, org.id, ["finance"])
    assert provisioned(owner_engine, org.id) == ([], [])

    async def first_requests() -> list[int]:
        async with httpx.AsyncClient(base_url=str(provider_api.base_url), timeout=60) as http:
            responses = await asyncio.gather(
                *(http.get("/v1/me", headers=bearer(token)) for _ in range(6))
            )
        return [response.status_code for response in responses]

    assert asyncio.run(first_requests()) == [200] * 6  # concurrent first sight
    assert provider_api.get("/v1/me", headers=bearer(token)).status_code == 200

    users, events = provisioned(owner_engine, org.id)
    expected_id = oidc_user_id(provider.issuer, sub)
    assert [(u.id, u.email, u.display_name) for u in users] == [
        (expected_id, f"{sub}@example.com", f"Person {sub}")
    ]
    assert len(events) == 1
    assert events[0].user_id == expected_id
    assert events[0].resource_id == expected_id
    assert events[0].details["subject"] == sub
    assert events[0].details["issuer"] == provider.issuer
    assert events[0].details["roles"] == ["finance"]


def test_one_subject_in_two_organizations_gets_a_user_in_each(
    provider_api: httpx.Client, provider: MockProvider, db: Session, owner_engine: Engine
) -> None:
    """User ids are unique per organization (primary key (organization_id, id), migration
    0013): the same identity provisioned by two organizations is two users, one each."""
    org_a, org_b = create_organization(db), create_organization(db)
    sub, token_a = provider_token(provider, org_a.id, ["finance"])
    assert provider_api.get("/v1/me", headers=bearer(token_a)).status_code == 200
    provider.set_user(
        sub,
        {"email": f"{sub}@example.com", "name": f"Person {sub}", "org": org_b.id}
        | {"roles": ["auditor"]},
    )
    me_b = provider_api.get("/v1/me", headers=bearer(provider.id_token(sub, client_id=CLIENT_ID)))
    assert me_b.status_code == 200, me_b.text
    assert me_b.json()["organization"]["id"] == org_b.id
    expected_id = oidc_user_id(provider.issuer, sub)
    for org in (org_a, org_b):
        users, events = provisioned(owner_engine, org.id)
        assert [u.id for u in users] == [expected_id]
        assert [e.user_id for e in events] == [expected_id]
    assert provider_api.get("/v1/me", headers=bearer(token_a)).json()["organization"]["id"] == (
        org_a.id
    )


def test_unknown_role_grants_nothing_and_is_logged(
    provider_api: httpx.Client,
    provider: MockProvider,
    db: Session,
    caplog: pytest.LogCaptureFixture,
) -> None:
    org = create_organization(db)
    role = unique("intern")
    _, token = provider_token(provider, org.id, [role])
    with caplog.at_level(logging.WARNING, logger="pivotal_reporting.auth.provisioning"):
        me = provider_api.get("/v1/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert me.json()["permissions"] == []
    assert any(role in record.getMessage() for record in caplog.records)
    summary = provider_api.get(
        SUMMARY, params={"organizationId": org.id} | WINDOW, headers=bearer(token)
    )
    assert summary.status_code == 403
    assert summary.headers["content-type"].startswith("application/problem+json")


def test_token_for_another_audience_is_refused(
    provider_api: httpx.Client, provider: MockProvider, db: Session, owner_engine: Engine
) -> None:
    org = create_organization(db)
    _, token = provider_token(provider, org.id, ["finance"], client_id="another-app")
    response = provider_api.get("/v1/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert provisioned(owner_engine, org.id) == ([], [])


def test_hs256_is_refused_when_an_issuer_is_set(
    provider_api: httpx.Client, settings: Settings, db: Session, provider: MockProvider
) -> None:
    org = create_organization(db)
    ours = mint_token(
        settings, user_id="u_1", organization_id=org.id, expires_in=timedelta(minutes=5)
    )
    response = provider_api.get("/v1/me", headers=bearer(ours))
    assert response.status_code == 401
    assert "RS256 and ES256" in response.json()["detail"]
    # Algorithm confusion: the provider's public key used as an HMAC secret.
    public_jwk = httpx.get(f"{provider.issuer}/jwks").json()["keys"][0]
    now = int(time.time())
    forged = jwt.encode(
        {
            "iss": provider.issuer,
            "aud": CLIENT_ID,
            "sub": "x",
            "org": org.id,
            "iat": now,
            "exp": now + 300,
        },
        str(public_jwk["n"]),
        algorithm="HS256",
    )
    assert provider_api.get("/v1/me", headers=bearer(forged)).status_code == 401


def test_unknown_organization_is_refused(
    provider_api: httpx.Client, provider: MockProvider
) -> None:
    _, token = provider_token(provider, unique("org_missing"), ["finance"])
    response = provider_api.get("/v1/me", headers=bearer(token))
    assert response.status_code == 401
    assert "does not exist" in response.json()["detail"]


def test_missing_organization_claim_is_refused(
    provider_api: httpx.Client, provider: MockProvider
) -> None:
    sub = unique("person")
    provider.set_user(sub, {"email": f"{sub}@example.com", "roles": ["finance"]})
    token = provider.id_token(sub, client_id=CLIENT_ID)
    response = provider_api.get("/v1/me", headers=bearer(token))
    assert response.status_code == 401
    assert "names no organization" in response.json()["detail"]


def _claims(org: str, roles: list[str]) -> dict[str, Any]:
    """Keycloak-style nesting: the key API reads ``tenant.id`` and ``realm_access.roles``."""
    return {"tenant": {"id": org}, "realm_access": {"roles": roles}}


def test_key_rotation_without_restart(
    key_api: httpx.Client, key_server: KeyServer, db: Session
) -> None:
    org = create_organization(db)
    old, new = SigningKey.rsa(unique("kid")), SigningKey.ec(unique("kid"))
    key_server.published = [old]
    old_token = key_server.sign(
        old, audience=CLIENT_ID, sub=unique("k"), claims=_claims(org.id, ["finance"])
    )
    first = key_api.get("/v1/me", headers=bearer(old_token))
    assert first.status_code == 200, first.text
    assert first.json()["permissions"] == sorted(ROLE_PERMISSIONS["finance"])

    # The provider rotates in an ES256 key: a token naming it works at once.
    key_server.published = [old, new]
    new_token = key_server.sign(
        new, audience=CLIENT_ID, sub=unique("k"), claims=_claims(org.id, ["auditor"])
    )
    second = key_api.get("/v1/me", headers=bearer(new_token))
    assert second.status_code == 200, second.text
    assert second.json()["permissions"] == sorted(ROLE_PERMISSIONS["auditor"])

    # The provider removes the old key: once the cache (1 s here) is refetched, the old
    # key's tokens are refused; the new key's still pass.
    key_server.published = [new]
    time.sleep(1.5)
    refused = key_api.get("/v1/me", headers=bearer(old_token))
    assert refused.status_code == 401
    assert "does not publish" in refused.json()["detail"]
    assert key_api.get("/v1/me", headers=bearer(new_token)).status_code == 200


def test_unknown_kid_flood_is_bounded_by_the_cache(
    key_api: httpx.Client, key_server: KeyServer, db: Session
) -> None:
    """A token with a made-up kid refetches; one with a known kid does not."""
    org = create_organization(db)
    key = SigningKey.ec(unique("kid"))
    key_server.published = [key]
    token = key_server.sign(key, audience=CLIENT_ID, sub=unique("k"), claims=_claims(org.id, []))
    assert key_api.get("/v1/me", headers=bearer(token)).status_code == 200
    before = key_server.jwks_requests
    for _ in range(3):
        assert key_api.get("/v1/me", headers=bearer(token)).status_code == 200
    assert key_server.jwks_requests == before  # within the cache lifetime: no refetch


def test_expired_token_other_issuer_and_lifetime_cap(
    key_api: httpx.Client, key_server: KeyServer, db: Session, settings: Settings
) -> None:
    org = create_organization(db)
    key = SigningKey.rsa(unique("kid"))
    key_server.published = [key]
    claims = _claims(org.id, ["finance"])
    expired = key_server.sign(
        key,
        audience=CLIENT_ID,
        sub=unique("k"),
        claims=claims,
        issued=datetime.now(UTC) - timedelta(hours=2),
        lifetime=timedelta(hours=1),
    )
    response = key_api.get("/v1/me", headers=bearer(expired))
    assert response.status_code == 401
    assert response.json()["detail"] == "The bearer token has expired."

    other_issuer = key_server.sign(
        key,
        audience=CLIENT_ID,
        sub=unique("k"),
        claims=claims | {"iss": "https://elsewhere.example"},
    )
    assert key_api.get("/v1/me", headers=bearer(other_issuer)).status_code == 401

    too_long = key_server.sign(
        key,
        audience=CLIENT_ID,
        sub=unique("k"),
        claims=claims,
        lifetime=timedelta(seconds=settings.jwt_max_lifetime_seconds + 3600),
    )
    response = key_api.get("/v1/me", headers=bearer(too_long))
    assert response.status_code == 401
    assert "longer than" in response.json()["detail"]

    string_exp = key_server.sign(
        key, audience=CLIENT_ID, sub=unique("k"), claims=claims | {"exp": "99999999999"}
    )
    response = key_api.get("/v1/me", headers=bearer(string_exp))
    assert response.status_code == 401


def test_unreachable_provider_is_503(settings: Settings, db: Session) -> None:
    app = create_app(oidc_settings(settings, f"http://127.0.0.1:{free_port()}"))
    key = SigningKey.rsa("k")
    now = int(time.time())
    token = jwt.encode(
        {"sub": "s", "iat": now, "exp": now + 60},
        key.private,
        algorithm="RS256",
        headers={"kid": "k"},
    )
    with ServerThread(app) as server:
        response = httpx.get(f"{server.base_url}/v1/me", headers=bearer(token), timeout=30)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "identity provider" in response.json()["detail"]


def test_issuer_requires_an_audience() -> None:
    with pytest.raises(ValidationError, match="PIVOTAL_OIDC_AUDIENCE"):
        Settings(oidc_issuer="https://id.example")


def test_email_of_another_user_is_not_taken_over(
    key_api: httpx.Client, key_server: KeyServer, db: Session, owner_engine: Engine
) -> None:
    """A provider identity is never linked to an existing user by email: 403, no row."""
    org = create_organization(db)
    key = SigningKey.ec(unique("kid"))
    key_server.published = [key]
    first = key_server.sign(
        key,
        audience=CLIENT_ID,
        sub=unique("k"),
        claims=_claims(org.id, []) | {"email": "a@x.example"},
    )
    assert key_api.get("/v1/me", headers=bearer(first)).status_code == 200
    second = key_server.sign(
        key,
        audience=CLIENT_ID,
        sub=unique("k"),
        claims=_claims(org.id, []) | {"email": "a@x.example"},
    )
    response = key_api.get("/v1/me", headers=bearer(second))
    assert response.status_code == 403
    assert "already belongs to another user" in response.json()["detail"]
    users, events = provisioned(owner_engine, org.id)
    assert len(users) == 1
    assert len(events) == 1


def test_rate_limit_budget_is_per_provider_user(
    settings: Settings, key_server: KeyServer, db: Session
) -> None:
    """Two provider users behind one address have a budget each (not the address's)."""
    org = create_organization(db)
    key = SigningKey.rsa(unique("kid"))
    key_server.published = [key]
    app = create_app(
        oidc_settings(
            settings,
            key_server.issuer,
            rate_limit_per_minute=3,
            oidc_org_claim="tenant.id",
            oidc_roles_claim="realm_access.roles",
        )
    )
    first, second = (
        key_server.sign(key, audience=CLIENT_ID, sub=unique("k"), claims=_claims(org.id, []))
        for _ in range(2)
    )
    with ServerThread(app) as server, httpx.Client(base_url=server.base_url) as http:
        statuses = [http.get("/v1/me", headers=bearer(first)).status_code for _ in range(4)]
        other = http.get("/v1/me", headers=bearer(second))
    assert statuses == [200, 200, 200, 429]
    assert other.status_code == 200
    assert other.headers["RateLimit"].startswith('"per-user";r=2;')
