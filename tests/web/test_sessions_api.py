"""Dashboard sign-in over plain HTTP: links, cookies, CSRF, sign-out, expiry, tenancy;
the lookup, audit-verification and event-stream endpoints; the page's boot data."""

from __future__ import annotations

import json
import queue
import re
import threading
import time
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from pivotal_reporting.auth.sessions import digest, issue_signin_link_blocking
from pivotal_reporting.exports.schemas import ExportFormat
from tests.factories import Tenant, create_customer, create_export_job, create_payment
from tests.server import ServerThread

EXPORT_BODY = {"reportType": "payments_received", "format": "csv", "filters": {}}


@contextmanager
def signed_in(server: ServerThread, database_url: str, user_id: str) -> Iterator[httpx.Client]:
    code = issue_signin_link_blocking(database_url, user_id, session_lifetime=timedelta(hours=1))
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        response = http.get(f"/signin?code={code}")
        assert response.status_code == 303
        assert response.headers["location"] == "/"
        yield http


def csrf(http: httpx.Client) -> dict[str, str]:
    return {"X-CSRF-Token": http.cookies["pivotal_csrf"]}


def test_a_signin_link_sets_strict_http_only_cookies_and_works_once(
    api_server: ServerThread, database_url: str, tenant: Tenant
) -> None:
    code = issue_signin_link_blocking(
        database_url, tenant.viewer.id, session_lifetime=timedelta(hours=1)
    )
    assert code is not None
    with httpx.Client(base_url=api_server.base_url) as http:
        response = http.get(f"/signin?code={code}")
        assert response.status_code == 303
        cookies = response.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("pivotal_session="))
        token = next(c for c in cookies if c.startswith("pivotal_csrf="))
        assert "HttpOnly" in session
        assert "SameSite=strict" in session
        assert "Secure" not in session  # plain HTTP here; HTTPS adds Secure
        assert "HttpOnly" not in token
        assert "SameSite=strict" in token
        assert http.get("/v1/me").json()["user"]["id"] == tenant.viewer.id
    with httpx.Client(base_url=api_server.base_url) as again:
        response = again.get(f"/signin?code={code}")
        assert response.headers["location"] == "/?signin=failed"
        assert "pivotal_session" not in response.cookies
        assert again.get("/v1/me").status_code == 401


def test_an_unknown_or_malformed_link_signs_nobody_in(client: httpx.Client, tenant: Tenant) -> None:
    for code in ("", "nonsense", f"{tenant.org.id}.{'x' * 43}"):
        response = client.get(f"/signin?code={code}")
        assert response.headers["location"] == "/?signin=failed"


def test_state_changes_need_the_csrf_token_of_the_session(
    api_server: ServerThread, database_url: str, tenant: Tenant
) -> None:
    with signed_in(api_server, database_url, tenant.exporter.id) as http:
        missing = http.post("/v1/reports/export", json=EXPORT_BODY)
        assert missing.status_code == 403
        assert missing.headers["content-type"] == "application/problem+json"
        assert "X-CSRF-Token" in missing.json()["detail"]
        wrong = http.post(
            "/v1/reports/export", json=EXPORT_BODY, headers={"X-CSRF-Token": "x" * 43}
        )
        assert wrong.status_code == 403
        # Header and cookie agree but belong to no session: refused too.
        forged = "y" * 43
        http.cookies.set("pivotal_csrf", forged)
        assert (
            http.post(
                "/v1/reports/export", json=EXPORT_BODY, headers={"X-CSRF-Token": forged}
            ).status_code
            == 403
        )


def test_a_cookie_session_has_exactly_the_users_permissions(
    api_server: ServerThread, database_url: str, tenant: Tenant
) -> None:
    with signed_in(api_server, database_url, tenant.exporter.id) as http:
        created = http.post("/v1/reports/export", json=EXPORT_BODY, headers=csrf(http))
        assert created.status_code == 202, created.text
        job_id = created.json()["jobId"]
        assert http.get(f"/v1/reports/export/{job_id}").status_code == 200
        assert http.get("/v1/audit-logs").status_code == 403
    with signed_in(api_server, database_url, tenant.viewer.id) as http:
        refused = http.post("/v1/reports/export", json=EXPORT_BODY, headers=csrf(http))
        assert refused.status_code == 403
        assert "reports.export_reports" in refused.json()["detail"]
        # The viewer sees only their own jobs: the exporter's is not found.
        assert http.get(f"/v1/reports/export/{job_id}").status_code == 404


def test_sign_out_ends_the_session(
    api_server: ServerThread, database_url: str, tenant: Tenant
) -> None:
    with signed_in(api_server, database_url, tenant.viewer.id) as http:
        old = dict(http.cookies)
        assert http.delete("/v1/session").status_code == 403  # CSRF applies
        response = http.delete("/v1/session", headers=csrf(http))
        assert response.status_code == 204
        assert any(
            c.startswith("pivotal_session=") and "Max-Age=0" in c
            for c in response.headers.get_list("set-cookie")
        )
    with httpx.Client(base_url=api_server.base_url, cookies=old) as replay:
        assert replay.get("/v1/me").status_code == 401


def test_a_pasted_token_opens_a_session_that_ends_with_the_token(
    client: httpx.Client, tenant: Tenant, db: Session
) -> None:
    token = tenant.token(tenant.viewer, expires_in=timedelta(seconds=120))
    response = client.post("/v1/session", json={"token": token})
    assert response.status_code == 201, response.text
    assert response.json()["user"]["id"] == tenant.viewer.id
    secret = client.cookies["pivotal_session"].rpartition(".")[2]
    expires_at = db.execute(
        text("SELECT expires_at FROM web_sessions WHERE id = :id"), {"id": digest(secret)}
    ).scalar_one()
    remaining = (expires_at - datetime.now(UTC)).total_seconds()
    assert 100 < remaining <= 120
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("pivotal_session=")
    )
    assert 100 < int(re.search(r"Max-Age=(\d+)", cookie).group(1)) <= 120  # type: ignore[union-attr]
    expired = tenant.token(tenant.viewer, expires_in=timedelta(seconds=-5))
    assert client.post("/v1/session", json={"token": expired}).status_code == 401
    assert client.post("/v1/session", json={"token": "not-a-token"}).status_code == 401


def test_an_expired_or_foreign_session_is_refused(
    api_server: ServerThread,
    database_url: str,
    tenant: Tenant,
    other_tenant: Tenant,
    db: Session,
) -> None:
    with signed_in(api_server, database_url, tenant.viewer.id) as http:
        value = http.cookies["pivotal_session"]
        _org, _, secret = value.rpartition(".")
        with httpx.Client(
            base_url=api_server.base_url,
            cookies={"pivotal_session": f"{other_tenant.org.id}.{secret}"},
        ) as foreign:
            assert foreign.get("/v1/me").status_code == 401
        assert http.get("/v1/me").status_code == 200
        db.execute(
            text("UPDATE web_sessions SET expires_at = now() - interval '1 second' WHERE id = :id"),
            {"id": digest(secret)},
        )
        db.commit()
        refused = http.get("/v1/me")
        assert refused.status_code == 401
        assert "sign in again" in refused.json()["detail"]


# ---- lookups --------------------------------------------------------------------------


def test_lookups_access_matrix_and_tenancy(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant, db: Session
) -> None:
    mine = create_customer(db, org=tenant.org, name="Harbor Freight 100% Ltd")
    create_customer(db, org=tenant.org, name="Unrelated Co")
    create_customer(db, org=other_tenant.org, name="Harbor Freight Other Tenant")
    assert client.get("/v1/lookups/customers?q=harbor").status_code == 401
    assert (
        client.get("/v1/lookups/customers?q=harbor", headers=tenant.headers(tenant.nobody))
    ).status_code == 403
    found = client.get("/v1/lookups/customers?q=harbor", headers=tenant.headers(tenant.viewer))
    assert found.status_code == 200
    assert found.json()["items"] == [{"id": mine.id, "name": mine.name}]
    # LIKE wildcards in q are literal.
    pct = client.get("/v1/lookups/customers?q=100%25", headers=tenant.headers(tenant.viewer))
    assert [i["id"] for i in pct.json()["items"]] == [mine.id]
    exact = client.get(
        "/v1/lookups/customers", params={"name": mine.name}, headers=tenant.headers(tenant.viewer)
    )
    assert [i["id"] for i in exact.json()["items"]] == [mine.id]
    users = client.get("/v1/lookups/users?q=User", headers=tenant.headers(tenant.viewer)).json()
    assert {i["id"] for i in users["items"]} <= {
        tenant.viewer.id,
        tenant.exporter.id,
        tenant.admin.id,
        tenant.nobody.id,
    }
    bad = client.get("/v1/lookups/invoices", headers=tenant.headers(tenant.viewer))
    assert bad.status_code == 422


# ---- audit verification -----------------------------------------------------------------


def test_audit_verification_matrix(client: httpx.Client, tenant: Tenant, db: Session) -> None:
    client.get("/v1/me", headers=tenant.headers(tenant.admin))
    client.get("/v1/audit-logs", headers=tenant.headers(tenant.viewer))  # a denial, audited
    assert client.get("/v1/audit-logs/verification").status_code == 401
    assert (
        client.get("/v1/audit-logs/verification", headers=tenant.headers(tenant.viewer))
    ).status_code == 403
    response = client.get("/v1/audit-logs/verification", headers=tenant.headers(tenant.admin))
    assert response.status_code == 200
    body = response.json()
    rows = db.execute(
        text("SELECT count(*) FROM audit_logs WHERE organization_id = :org"),
        {"org": tenant.org.id},
    ).scalar_one()
    assert body["ok"] is True
    assert body["organizationId"] == tenant.org.id
    assert body["rowsChecked"] == rows >= 1


# ---- live events --------------------------------------------------------------------------


@pytest.fixture
def event_stream(api_server: ServerThread, tenant: Tenant) -> Iterator[queue.Queue[dict]]:
    """The exporter's /v1/events, parsed into a queue by a reader thread."""
    events: queue.Queue[dict] = queue.Queue()
    stop = threading.Event()

    def read() -> None:
        with (
            httpx.Client(base_url=api_server.base_url, timeout=httpx.Timeout(5, read=60)) as http,
            http.stream("GET", "/v1/events", headers=tenant.headers(tenant.exporter)) as response,
        ):
            kind = None
            for line in response.iter_lines():
                if stop.is_set():
                    return
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    events.put({"event": kind, **json.loads(line[6:])})

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    assert events.get(timeout=10)["event"] == "ready"
    yield events
    stop.set()


def _next(
    events: queue.Queue[dict], predicate: typing.Callable[[dict], bool], seen: list[dict]
) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            event = events.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        seen.append(event)
        if predicate(event):
            return event
    raise AssertionError("no such event within 10 s")


def test_events_push_changed_figures_and_own_export_progress(
    event_stream: queue.Queue[dict],
    tenant: Tenant,
    other_tenant: Tenant,
    db: Session,
) -> None:
    # Another organization's rows and another user's job are not pushed to this user.
    create_payment(db, org=other_tenant.org)
    foreign = create_export_job(db, org=tenant.org, user=tenant.viewer)
    create_payment(db, org=tenant.org)
    seen: list[dict] = []
    event = _next(event_stream, lambda e: e["event"] == "figures", seen)
    assert event == {"event": "figures", "kind": "figures", "report": "payments_received"}
    job = create_export_job(db, org=tenant.org, user=tenant.exporter)
    pushed = _next(event_stream, lambda e: e["event"] == "export", seen)
    assert pushed["id"] == job.id
    assert pushed["status"] == job.status
    assert "org" not in pushed
    assert "user" not in pushed
    # NOTIFYs arrive in commit order: the other organization's payment and the viewer's
    # job came before, and neither reached this stream.
    assert [e["event"] for e in seen] == ["figures", "export"]
    assert foreign.id not in {e.get("id") for e in seen}


def test_events_need_a_caller_who_may_view_reports(client: httpx.Client, tenant: Tenant) -> None:
    assert client.get("/v1/events").status_code == 401
    assert client.get("/v1/events", headers=tenant.headers(tenant.nobody)).status_code == 403


def test_the_session_cookie_is_secure_under_https(
    start_server: Callable[..., ServerThread], tenant: Tenant
) -> None:
    """Behind a TLS proxy that the server is configured to trust (127.0.0.1 here)."""
    server = start_server(forwarded_allow_ips="127.0.0.1")
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        response = http.post(
            "/v1/session",
            json={"token": tenant.token(tenant.viewer)},
            headers={"X-Forwarded-Proto": "https"},
        )
        assert response.status_code == 201
        for cookie in response.headers.get_list("set-cookie"):
            assert "Secure" in cookie
        # Without the proxy's word the connection is plain HTTP: no Secure flag.
        plain = http.post("/v1/session", json={"token": tenant.token(tenant.viewer)})
        assert all("Secure" not in c for c in plain.headers.get_list("set-cookie"))


def test_an_untrusted_forwarded_proto_does_not_make_the_cookie_secure(
    client: httpx.Client, tenant: Tenant
) -> None:
    response = client.post(
        "/v1/session",
        json={"token": tenant.token(tenant.viewer)},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert response.status_code == 201
    assert all("Secure" not in c for c in response.headers.get_list("set-cookie"))


# ---- the page -----------------------------------------------------------------------------


def test_the_page_boots_with_the_apis_export_formats_under_a_strict_csp(
    client: httpx.Client,
) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    boot = json.loads(
        re.search(r'<script type="application/json" id="boot">(.*?)</script>', response.text).group(
            1
        )  # type: ignore[union-attr]
    )
    assert boot["exportFormats"] == list(typing.get_args(ExportFormat))
    assert {r["path"] for r in boot["reports"]} == {
        "quote-cycle-time",
        "invoice-settlement-time",
        "payments-received",
        "time-approvals",
    }
    script = client.get("/static/app.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    for deep_link in ("/reports/payments-received", "/exports", "/audit"):
        assert client.get(deep_link).status_code == 200


def test_long_expired_sessions_and_links_are_pruned_on_the_next_sign_in(
    api_server: ServerThread, database_url: str, tenant: Tenant, db: Session
) -> None:
    with signed_in(api_server, database_url, tenant.viewer.id):
        pass
    db.execute(
        text(
            "UPDATE web_sessions SET expires_at = now() - interval '2 days' "
            "WHERE organization_id = :org AND user_id = :user"
        ),
        {"org": tenant.org.id, "user": tenant.viewer.id},
    )
    db.execute(
        text(
            "UPDATE web_signin_links SET expires_at = now() - interval '2 days', "
            "session_expires_at = now() - interval '2 days' "
            "WHERE organization_id = :org AND user_id = :user"
        ),
        {"org": tenant.org.id, "user": tenant.viewer.id},
    )
    db.commit()
    with signed_in(api_server, database_url, tenant.viewer.id):
        pass
    counts = db.execute(
        text(
            "SELECT (SELECT count(*) FROM web_sessions WHERE user_id = :user), "
            "(SELECT count(*) FROM web_signin_links WHERE user_id = :user)"
        ),
        {"user": tenant.viewer.id},
    ).one()
    assert tuple(counts) == (1, 1)  # only the new ones
