"""The dashboard signs in through the real provider process in Chromium.

The dashboard is opened as ``localhost`` and the provider runs on ``127.0.0.1``: two
sites, as in production, so the provider's redirect back is a cross-site navigation and
the SameSite rules of the flow cookie (Lax) and the session cookie (Strict) are the
browser's, not assumed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from pivotal_reporting.app import create_app
from pivotal_reporting.auth.oidc import oidc_user_id
from pivotal_reporting.auth.principal import EXPORT_REPORTS, VIEW_REPORTS
from pivotal_reporting.config import Settings
from tests.auth.oidc_servers import MockProvider
from tests.auth.test_oidc import oidc_settings, provisioned
from tests.factories import create_organization, unique
from tests.server import ServerThread


@pytest.fixture(scope="module")
def provider() -> Iterator[MockProvider]:
    with MockProvider() as server:
        yield server


@pytest.fixture(scope="module")
def provider_dashboard(settings: Settings, provider: MockProvider) -> Iterator[str]:
    app = create_app(oidc_settings(settings, provider.issuer, oidc_client_secret=SecretStr("s")))
    with ServerThread(app) as server:
        yield f"http://localhost:{server.port}"


def test_sign_in_through_the_provider_in_the_browser(
    context: Any,
    provider_dashboard: str,
    provider: MockProvider,
    db: Session,
    owner_engine: Engine,
) -> None:
    org = create_organization(db, name="Provider Org")
    sub = unique("person")
    provider.set_user(
        sub,
        {
            "email": f"{sub}@example.com",
            "name": "Pat Provider",
            "org": org.id,
            "roles": ["finance"],
        },
    )
    page = context.new_page()
    page.goto(f"{provider_dashboard}/")
    page.click("#provider-signin")
    page.wait_for_url(f"{provider.issuer}/oauth2/authorize*")
    page.get_by_placeholder("sub").fill(sub)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_selector("#who:has-text('Pat Provider')")
    assert "Provider Org" in page.inner_text("#who")
    assert page.url.startswith(f"{provider_dashboard}/reports/")
    me = page.evaluate("fetch('/v1/me').then((r) => r.json())")
    assert me["user"]["id"] == oidc_user_id(provider.issuer, sub)
    assert me["permissions"] == sorted([VIEW_REPORTS, EXPORT_REPORTS])
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["pivotal_session"]["sameSite"] == "Strict"
    assert "pivotal_oidc_flow" not in cookies
    users, events = provisioned(owner_engine, org.id)
    assert len(users) == 1
    assert len(events) == 1
