"""Dashboard sign-in through the real provider process: authorization code + PKCE.

Over HTTP only: the test plays the browser (a cookie jar) and the person at the
provider's sign-in form (``oidc-provider-mock``'s form, posted).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from pivotal_reporting.app import create_app
from pivotal_reporting.auth.oidc import oidc_user_id
from pivotal_reporting.auth.principal import EXPORT_REPORTS, VIEW_AUDIT_LOGS, VIEW_REPORTS
from pivotal_reporting.config import Settings
from tests.auth.oidc_servers import KeyServer, MockProvider, SigningKey, s256
from tests.auth.test_oidc import (
    CLIENT_ID,
    SUMMARY,
    WINDOW,
    bearer,
    oidc_settings,
    provider_token,
    provisioned,
)
from tests.factories import Tenant, create_organization, unique
from tests.server import ServerThread

FLOW_COOKIE = "pivotal_oidc_flow"


@pytest.fixture(scope="module")
def api(settings: Settings, provider: MockProvider) -> Iterator[str]:
    # oidc-provider-mock admits confidential clients only (any secret): PKCE on top.
    app = create_app(
        oidc_settings(settings, provider.issuer, oidc_client_secret=SecretStr("mock-secret"))
    )
    with ServerThread(app) as server:
        yield server.base_url


def person(provider: MockProvider, org: str, roles: list[str]) -> str:
    sub = unique("person")
    provider.set_user(
        sub, {"email": f"{sub}@example.com", "name": f"Person {sub}", "org": org, "roles": roles}
    )
    return sub


def start(browser: httpx.Client, provider: MockProvider, api: str) -> tuple[str, dict[str, str]]:
    """``/oidc/login``: the provider URL it redirects to, and that URL's parameters."""
    login = browser.get("/oidc/login")
    assert login.status_code == 302, login.text
    location = login.headers["location"]
    assert location.startswith(f"{provider.issuer}/oauth2/authorize?")
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    return location, params


def test_sign_in_with_authorization_code_and_pkce(
    api: str, provider: MockProvider, db: Session, owner_engine: Engine
) -> None:
    org = create_organization(db)
    sub = person(provider, org.id, ["finance"])
    with httpx.Client(base_url=api) as browser:
        location, params = start(browser, provider, api)
        assert params["response_type"] == "code"
        assert params["client_id"] == CLIENT_ID
        assert params["redirect_uri"] == f"{api}/oidc/callback"
        assert params["code_challenge_method"] == "S256"
        assert set(params["scope"].split()) >= {"openid"}
        flow = browser.cookies.get(FLOW_COOKIE)
        assert flow is not None
        state, nonce, verifier = flow.split(".")
        assert params["state"] == state
        assert params["nonce"] == nonce
        assert params["code_challenge"] == s256(verifier)
        assert verifier not in location  # the verifier never travels through the browser URL

        # The person signs in at the provider, which sends the browser back with a code.
        at_provider = httpx.post(location, data={"sub": sub})
        assert at_provider.status_code == 302, at_provider.text
        back = at_provider.headers["location"]
        assert back.startswith(f"{api}/oidc/callback?")

        landing = browser.get(back)
        assert landing.status_code == 303, landing.text
        assert landing.headers["location"] == "/"
        assert browser.cookies.get("pivotal_session")
        assert browser.cookies.get(FLOW_COOKIE) is None  # one flow, one use

        me = browser.get("/v1/me")
        assert me.status_code == 200, me.text
        assert me.json()["user"]["id"] == oidc_user_id(provider.issuer, sub)
        assert me.json()["permissions"] == sorted([VIEW_REPORTS, EXPORT_REPORTS])
        summary = browser.get(SUMMARY, params={"organizationId": org.id} | WINDOW)
        assert summary.status_code == 200, summary.text
        audit = browser.get("/v1/audit-logs", params={"organizationId": org.id})
        assert audit.status_code == 403  # finance does not map to audit.view_audit_logs

        # The same code cannot sign in twice.
        replay = browser.get(back, follow_redirects=False)
        assert replay.status_code == 303
        assert replay.headers["location"] == "/?signin=provider-failed"

    users, events = provisioned(owner_engine, org.id)
    assert [u.id for u in users] == [oidc_user_id(provider.issuer, sub)]
    assert len(events) == 1


def test_a_forged_state_or_a_missing_flow_cookie_opens_no_session(
    api: str, provider: MockProvider, db: Session, owner_engine: Engine
) -> None:
    org = create_organization(db)
    sub = person(provider, org.id, ["finance"])
    with httpx.Client(base_url=api) as browser:
        location, params = start(browser, provider, api)
        back = httpx.post(location, data={"sub": sub}).headers["location"]
        forged = back.replace(f"state={params['state']}", "state=forged")
        assert forged != back
        answer = browser.get(forged)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/?signin=provider-failed"
        assert browser.cookies.get("pivotal_session") is None
    with httpx.Client(base_url=api) as other_browser:  # the code, without the flow cookie
        answer = other_browser.get(back)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/?signin=provider-failed"
        assert other_browser.cookies.get("pivotal_session") is None
    assert provisioned(owner_engine, org.id) == ([], [])


def test_the_provider_refusing_lands_on_the_failure_page(
    api: str, provider: MockProvider, db: Session
) -> None:
    org = create_organization(db)
    with httpx.Client(base_url=api) as browser:
        location, _ = start(browser, provider, api)
        denied = httpx.post(location, data={"action": "deny"})
        assert denied.status_code == 302
        answer = browser.get(denied.headers["location"])
        assert answer.status_code == 303
        assert answer.headers["location"] == "/?signin=provider-failed"
        assert browser.cookies.get("pivotal_session") is None
    assert org.id  # the organization is untouched: nothing to provision


def test_a_pasted_provider_token_opens_a_session_with_its_roles(
    api: str, provider: MockProvider, db: Session, tenant: Tenant
) -> None:
    org = create_organization(db)
    _, token = provider_token(provider, org.id, ["auditor"])
    with httpx.Client(base_url=api) as browser:
        opened = browser.post("/v1/session", json={"token": token})
        assert opened.status_code == 201, opened.text
        assert opened.json()["permissions"] == sorted([VIEW_REPORTS, VIEW_AUDIT_LOGS])
        assert browser.get("/v1/me").json()["permissions"] == sorted(
            [VIEW_REPORTS, VIEW_AUDIT_LOGS]
        )
        audit = browser.get("/v1/audit-logs", params={"organizationId": org.id})
        assert audit.status_code == 200, audit.text
    with httpx.Client(base_url=api) as browser:  # our own HS256 token: refused
        refused = browser.post("/v1/session", json={"token": tenant.token(tenant.admin)})
        assert refused.status_code == 401
        assert browser.cookies.get("pivotal_session") is None


def test_the_page_offers_the_provider_only_when_configured(api: str, client: httpx.Client) -> None:
    assert '"providerSignIn":true' in httpx.get(f"{api}/").text
    assert '"providerSignIn":false' in client.get("/").text
    assert client.get("/oidc/login").status_code == 404
    assert bearer("x")  # the helper stays shared with test_oidc


def test_pkce_is_enforced_end_to_end_with_a_public_client_and_es256(
    settings: Settings, db: Session
) -> None:
    """The key server's token endpoint checks S256(code_verifier) against the challenge the
    login sent, and signs the ID token with ES256; no client secret is configured."""
    org = create_organization(db)
    key = SigningKey.ec(unique("kid"))
    with KeyServer() as provider:
        provider.published = [key]
        app = create_app(oidc_settings(settings, provider.issuer))
        with ServerThread(app) as server, httpx.Client(base_url=server.base_url) as browser:
            login = browser.get("/oidc/login")
            assert login.headers["location"].startswith(f"{provider.issuer}/authorize?")
            params = {
                k: v[0] for k, v in parse_qs(urlsplit(login.headers["location"]).query).items()
            }
            id_token = provider.sign(
                key,
                audience=CLIENT_ID,
                sub=unique("p"),
                claims={"org": org.id, "roles": ["finance"], "nonce": params["nonce"]},
            )
            # A code whose challenge is not the login's: the verifier cannot match it.
            provider.codes["wrong"] = (s256("another verifier"), id_token)
            refused = browser.get(
                "/oidc/callback", params={"code": "wrong", "state": params["state"]}
            )
            assert refused.headers["location"] == "/?signin=provider-failed"
            assert browser.cookies.get("pivotal_session") is None

            login = browser.get("/oidc/login")  # a new flow: new state, nonce and verifier
            params = {
                k: v[0] for k, v in parse_qs(urlsplit(login.headers["location"]).query).items()
            }
            id_token = provider.sign(
                key,
                audience=CLIENT_ID,
                sub=unique("p"),
                claims={"org": org.id, "roles": ["finance"], "nonce": params["nonce"]},
            )
            provider.codes["right"] = (params["code_challenge"], id_token)
            signed_in = browser.get(
                "/oidc/callback", params={"code": "right", "state": params["state"]}
            )
            assert signed_in.status_code == 303
            assert signed_in.headers["location"] == "/"
            me = browser.get("/v1/me")
            assert me.status_code == 200, me.text
            assert me.json()["permissions"] == sorted([VIEW_REPORTS, EXPORT_REPORTS])
    last = provider.token_requests[-1]
    assert "client_secret" not in last
    assert last["client_id"] == CLIENT_ID
    assert last["redirect_uri"] == f"{server.base_url}/oidc/callback"


def test_an_id_token_for_another_sign_in_is_refused(settings: Settings, db: Session) -> None:
    """The ID token must carry the nonce of this browser's flow."""
    org = create_organization(db)
    key = SigningKey.rsa(unique("kid"))
    with KeyServer() as provider:
        provider.published = [key]
        app = create_app(oidc_settings(settings, provider.issuer))
        with ServerThread(app) as server, httpx.Client(base_url=server.base_url) as browser:
            login = browser.get("/oidc/login")
            params = {
                k: v[0] for k, v in parse_qs(urlsplit(login.headers["location"]).query).items()
            }
            stolen = provider.sign(
                key, audience=CLIENT_ID, sub=unique("p"), claims={"org": org.id, "nonce": "other"}
            )
            provider.codes["c"] = (params["code_challenge"], stolen)
            answer = browser.get("/oidc/callback", params={"code": "c", "state": params["state"]})
            assert answer.headers["location"] == "/?signin=provider-failed"
            assert browser.cookies.get("pivotal_session") is None
