"""The token matrix: every way a bearer token can be wrong answers 401 problem+json."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from pivotal_reporting.auth.tokens import mint_token, verify_token
from pivotal_reporting.config import Settings
from pivotal_reporting.errors import Unauthorized
from pivotal_reporting.models import Organization, User
from tests.factories import Tenant, create_organization, create_user
from tests.server import TEST_JWT_SECRET


def _claims(tenant: Tenant, **overrides: object) -> dict[str, object]:
    now = datetime.now(UTC)
    base: dict[str, object] = {
        "sub": tenant.viewer.id,
        "org": tenant.org.id,
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    return {k: v for k, v in (base | overrides).items() if v is not None}


def _b64(data: dict[str, object]) -> str:
    raw = json.dumps(data, default=lambda d: int(d.timestamp())).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _alg_none(tenant: Tenant) -> str:
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(tenant))}."


TokenMaker = Callable[[Tenant], str]
BAD_TOKENS: dict[str, TokenMaker] = {
    "malformed": lambda t: "not-a-jwt",
    "empty-segments": lambda t: "..",
    "expired": lambda t: jwt.encode(
        _claims(t, exp=datetime.now(UTC) - timedelta(seconds=5)), TEST_JWT_SECRET
    ),
    "no-exp": lambda t: jwt.encode(_claims(t, exp=None), TEST_JWT_SECRET),
    "no-org-claim": lambda t: jwt.encode(_claims(t, org=None), TEST_JWT_SECRET),
    "no-sub": lambda t: jwt.encode(_claims(t, sub=None), TEST_JWT_SECRET),
    "wrong-signature": lambda t: jwt.encode(_claims(t), "another-secret-" + "y" * 40),
    "alg-none": _alg_none,
    "wrong-algorithm-hs512": lambda t: jwt.encode(_claims(t), TEST_JWT_SECRET, algorithm="HS512"),
    "unknown-user": lambda t: jwt.encode(_claims(t, sub="usr_does_not_exist"), TEST_JWT_SECRET),
    "user-claims-other-org": lambda t: jwt.encode(
        _claims(t, org="org_someone_else"), TEST_JWT_SECRET
    ),
    # Lifetime beyond PIVOTAL_JWT_MAX_LIFETIME_SECONDS (24 h by default).
    "exp-in-year-9999": lambda t: jwt.encode(
        _claims(t, exp=datetime(9999, 12, 31, tzinfo=UTC)), TEST_JWT_SECRET
    ),
    "exp-25-hours-away": lambda t: jwt.encode(
        _claims(t, exp=datetime.now(UTC) + timedelta(hours=25)), TEST_JWT_SECRET
    ),
    "issued-3-days-before-exp": lambda t: jwt.encode(
        _claims(t, iat=datetime.now(UTC) - timedelta(days=3)), TEST_JWT_SECRET
    ),
    # Date claims that are not JSON numbers.
    "string-exp": lambda t: jwt.encode(
        _claims(t, exp=str(int((datetime.now(UTC) + timedelta(minutes=5)).timestamp()))),
        TEST_JWT_SECRET,
    ),
    "string-iat": lambda t: jwt.encode(
        _claims(t, iat=str(int(datetime.now(UTC).timestamp()))), TEST_JWT_SECRET
    ),
    "string-nbf": lambda t: jwt.encode(
        _claims(t, nbf=str(int(datetime.now(UTC).timestamp()) - 60)), TEST_JWT_SECRET
    ),
    "boolean-exp": lambda t: jwt.encode(_claims(t, exp=True), TEST_JWT_SECRET),
}


# The HS512 case signs with a key shorter than SHA-512 wants: that warning is the point.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_bad_token_is_401_problem(client: httpx.Client, tenant: Tenant, case: str) -> None:
    token = BAD_TOKENS[case](tenant)
    response = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert token not in response.text


@pytest.mark.parametrize("header", ["", "Bearer", "Basic dXNlcjpwYXNz", "Token abc"])
def test_missing_or_non_bearer_authorization_is_401(client: httpx.Client, header: str) -> None:
    response = client.get("/v1/me", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.json()["status"] == 401


def test_user_of_a_deleted_organization_is_401(
    client: httpx.Client, tenant: Tenant, db: Session
) -> None:
    headers = tenant.headers(tenant.viewer)
    assert client.get("/v1/me", headers=headers).status_code == 200
    db.execute(
        update(Organization)
        .where(Organization.id == tenant.org.id)
        .values(deleted_at=datetime.now(UTC))
    )
    db.commit()
    assert client.get("/v1/me", headers=headers).status_code == 401


def test_disabled_user_is_401(client: httpx.Client, tenant: Tenant, db: Session) -> None:
    headers = tenant.headers(tenant.viewer)
    db.execute(update(User).where(User.id == tenant.viewer.id).values(status="disabled"))
    db.commit()
    assert client.get("/v1/me", headers=headers).status_code == 401


def test_token_of_one_org_naming_a_user_of_another_is_401(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant
) -> None:
    forged = jwt.encode(_claims(tenant, sub=other_tenant.admin.id), TEST_JWT_SECRET)
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_audience_and_issuer_are_enforced_when_configured(settings: Settings) -> None:
    strict = settings.model_copy(
        update={"jwt_audience": "pivotal", "jwt_issuer": "https://idp.test"}
    )
    good = {"sub": "u", "org": "o", "exp": datetime.now(UTC) + timedelta(minutes=1)}
    accepted = jwt.encode(good | {"aud": "pivotal", "iss": "https://idp.test"}, TEST_JWT_SECRET)
    assert verify_token(strict, accepted).user_id == "u"
    for claims in (
        good,
        good | {"aud": "other", "iss": "https://idp.test"},
        good | {"aud": "pivotal"},
    ):
        with pytest.raises(Unauthorized):
            verify_token(strict, jwt.encode(claims, TEST_JWT_SECRET))


def test_valid_token_for_a_fresh_user_works(
    client: httpx.Client, db: Session, settings: Settings
) -> None:
    org = create_organization(db)
    user = create_user(db, org=org)
    token = jwt.encode(
        {"sub": user.id, "org": org.id, "exp": datetime.now(UTC) + timedelta(minutes=1)},
        TEST_JWT_SECRET,
    )
    response = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["permissions"] == []


def test_lifetime_cap_is_a_setting(
    client: httpx.Client, tenant: Tenant, settings: Settings
) -> None:
    day_long = jwt.encode(
        _claims(tenant, exp=datetime.now(UTC) + timedelta(hours=23, minutes=59)), TEST_JWT_SECRET
    )
    headers = {"Authorization": f"Bearer {day_long}"}
    assert client.get("/v1/me", headers=headers).status_code == 200
    stricter = settings.model_copy(update={"jwt_max_lifetime_seconds": 3600})
    with pytest.raises(Unauthorized, match="3600 seconds"):
        verify_token(stricter, day_long)
    numeric_nbf = jwt.encode(
        _claims(tenant, nbf=datetime.now(UTC) - timedelta(minutes=1)), TEST_JWT_SECRET
    )
    assert verify_token(settings, numeric_nbf).user_id == tenant.viewer.id


def test_minting_beyond_the_cap_is_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="PIVOTAL_JWT_MAX_LIFETIME_SECONDS"):
        mint_token(settings, user_id="u", organization_id="o", expires_in=timedelta(days=2))
