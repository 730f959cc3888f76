"""The dashboard in a real browser (Chromium) against the real server and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from pivotal_reporting.auth.sessions import issue_signin_link_blocking
from tests.factories import create_payment
from tests.server import ServerThread
from tests.web.conftest import AXE, SCREENSHOTS, Seeded

REPORT_PATHS = (
    "quote-cycle-time",
    "invoice-settlement-time",
    "payments-received",
    "time-approvals",
)

# The pages whose summaries carry only the top customers (customerLimit).
CUSTOMER_LIMITED = ("invoice-settlement-time", "payments-received")

# The session's in-process worker also runs the other tests' exports (some of 600k+ rows
# when the full suite runs in parallel): a job may queue behind them for a while.
JOB_TIMEOUT_MS = 180_000


def signin_code(database_url: str, user_id: str) -> str:
    """A one-time code (in a thread: Playwright's sync API owns this thread's loop)."""
    with ThreadPoolExecutor(1) as pool:
        code = pool.submit(
            issue_signin_link_blocking, database_url, user_id, session_lifetime=timedelta(hours=1)
        ).result()
    assert code is not None
    return code


def sign_in(context: Any, server: ServerThread, database_url: str, user_id: str) -> Any:
    code = signin_code(database_url, user_id)
    page = context.new_page()
    page.goto(f"{server.base_url}/signin?code={code}")
    page.wait_for_selector("#topbar:not([hidden])")
    return page


def shot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def open_report(page: Any, server: ServerThread, path: str, search: str = "") -> dict[str, Any]:
    """Navigate to a report page; return the summary request the page made for its window."""
    with page.expect_response(
        lambda r: f"/v1/reports/summary/{path}" in r.url and "fromDate" in r.url
    ) as first:
        page.goto(f"{server.base_url}/reports/{path}{search}")
    page.wait_for_selector(".results[aria-busy='false'] .cards")
    window = page.get_attribute(".window", "data-window")
    current_from = window.split("/")[0] if window else None
    urls = [first.value.url]
    # The page asks for the window and, to compare, the previous period: pick the window's.
    for request_url in urls + page.evaluate(
        "performance.getEntriesByType('resource').map(e => e.name)"
    ):
        params = parse_qs(urlsplit(request_url).query)
        if current_from and params.get("fromDate", [""])[0].startswith(current_from):
            return {"url": request_url, "params": {k: v[0] for k, v in params.items()}}
    raise AssertionError(f"no summary request for the window {window}")


def api_get(client: httpx.Client, url: str, token: str) -> dict[str, Any]:
    response = client.get(url, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = json.loads(response.text, parse_float=Decimal)
    return body


def shown(page: Any, selector: str) -> dict[str, str]:
    return dict(
        page.eval_on_selector_all(
            selector,
            "nodes => nodes.map(n => [n.dataset.field + '|' + (n.dataset.key || ''), n.dataset.raw])",
        )
    )


def as_decimal(raw: str | None) -> Decimal | None:
    return None if raw in (None, "null") else Decimal(raw)


def test_sign_in_by_link_and_sign_out(
    context: Any, api_server: ServerThread, database_url: str, seeded: Seeded
) -> None:
    page = sign_in(context, api_server, database_url, seeded.tenant.admin.id)
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["pivotal_session"]["httpOnly"] is True
    assert cookies["pivotal_session"]["sameSite"] == "Strict"
    assert cookies["pivotal_csrf"]["httpOnly"] is False
    assert "Northwind Advisory" in page.inner_text("#who")
    assert page.is_visible("nav >> text=Audit")
    page.click("#signout")
    page.wait_for_selector("form.signin")
    assert "pivotal_session" not in {c["name"] for c in context.cookies()}
    # The old cookie no longer opens anything: a reload shows the sign-in form.
    page.goto(f"{api_server.base_url}/reports/payments-received")
    page.wait_for_selector("form.signin")
    shot(page, "00-sign-in")


def test_a_used_link_does_not_sign_in_again(
    context: Any, api_server: ServerThread, database_url: str, seeded: Seeded
) -> None:
    code = signin_code(database_url, seeded.tenant.viewer.id)
    page = context.new_page()
    page.goto(f"{api_server.base_url}/signin?code={code}")
    page.wait_for_selector("#topbar:not([hidden])")
    context.clear_cookies()
    page.goto(f"{api_server.base_url}/signin?code={code}")
    page.wait_for_selector("form.signin")
    assert "already used" in page.inner_text("form.signin")


@pytest.mark.parametrize("path", REPORT_PATHS)
def test_report_page_shows_the_api_figures(
    context: Any,
    api_server: ServerThread,
    client: httpx.Client,
    database_url: str,
    seeded: Seeded,
    path: str,
) -> None:
    page = sign_in(context, api_server, database_url, seeded.tenant.admin.id)
    request = open_report(page, api_server, path)
    body = api_get(client, request["url"], seeded.tenant.token(seeded.tenant.admin))
    summary = body["summary"]
    cards = shown(page, ".card[data-field]")
    assert cards, "no figures shown"
    for key, raw in cards.items():
        assert as_decimal(raw) == summary[key.split("|")[0]], key
    # Every bar of every breakdown (top lists: the shown top entries) equals the API's.
    bars = shown(page, ".bar-row[data-field]:not(.rest), .column[data-key]")
    assert bars
    for key, raw in bars.items():
        field, entry = key.split("|", 1)
        if field == "undefined":
            continue
        value = summary.get(field)
        if isinstance(value, dict):
            expected = value[entry]
            expected = expected["amount"] if isinstance(expected, dict) else expected
            assert Decimal(raw) == Decimal(expected), key
    # Top lists: the entries beyond the top ten are summed in one line. The customer lists
    # ask the API for the top ten only (customerLimit): compare with the whole breakdown.
    full_url = re.sub(r"&?customerLimit=\d+", "", request["url"])
    assert ("customerLimit=10" in request["url"]) is (path in CUSTOMER_LIMITED)
    whole = api_get(client, full_url, seeded.tenant.token(seeded.tenant.admin))["summary"]
    for chart in page.query_selector_all(".toplist[data-chart]"):
        field = chart.get_attribute("data-chart")
        top = {
            row.get_attribute("data-key") for row in chart.query_selector_all(".bar-row:not(.rest)")
        }
        rest = chart.query_selector(".bar-row.rest")
        others = [Decimal(v) for k, v in whole[field].items() if k not in top]
        assert (Decimal(rest.get_attribute("data-raw")) if rest else None) == (
            sum(others) if others else None
        ), field
    for chart in page.query_selector_all(".histogram[data-chart]"):
        field = chart.get_attribute("data-chart")
        if field in summary and isinstance(summary[field], list):
            counts = [int(c.get_attribute("data-raw")) for c in chart.query_selector_all(".column")]
            assert counts == [b["count"] for b in summary[field]], field
    page.wait_for_selector(".card .delta")  # the comparison follows the figures
    shot(page, f"report-{path}")


def test_payments_figures_match_the_rows(
    context: Any, api_server: ServerThread, database_url: str, seeded: Seeded
) -> None:
    """Independent of the API: the count and USD total from the factory rows."""
    page = sign_in(context, api_server, database_url, seeded.tenant.admin.id)
    request = open_report(page, api_server, "payments-received")
    start, end = request["params"]["fromDate"], request["params"]["toDate"]
    rows = [
        p for p in seeded.payments if start <= p.paid_at.isoformat().replace("+00:00", "Z") < end
    ]
    cards = shown(page, ".card[data-field]")
    assert Decimal(cards["totalPayments|"]) == len(rows)
    usd = sum((p.amount for p in rows if p.currency == "USD"), Decimal(0))
    assert Decimal(cards["totalAmount|"]) == usd


def test_changing_a_filter_changes_the_url_and_the_figures(
    context: Any, api_server: ServerThread, database_url: str, seeded: Seeded
) -> None:
    page = sign_in(context, api_server, database_url, seeded.tenant.admin.id)
    open_report(page, api_server, "payments-received")
    before = shown(page, ".card[data-field]")["totalPayments|"]
    page.select_option("select[name=method]", "credit_card")
    with page.expect_response(lambda r: "method=credit_card" in r.url):
        page.click("form.filters button[type=submit]")
    page.wait_for_selector(".results[aria-busy='false'] .cards")
    assert "method=credit_card" in page.url
    after = shown(page, ".card[data-field]")["totalPayments|"]
    window = page.get_attribute(".window", "data-window").split("/")
    rows = [
        p
        for p in seeded.payments
        if p.method == "credit_card" and window[0] <= p.paid_at.date().isoformat() < window[1]
    ]
    assert int(after) == len(rows) < int(before)
    # The link shows the same view to a colleague: reload keeps the filter.
    page.reload()
    page.wait_for_selector(".results[aria-busy='false'] .cards")
    assert page.input_value("select[name=method]") == "credit_card"
    shot(page, "report-payments-received-filtered")


def test_the_customer_picker_suggests_names_and_filters_by_id(
    context: Any, api_server: ServerThread, database_url: str, seeded: Seeded
) -> None:
    page = sign_in(context, api_server, database_url, seeded.tenant.admin.id)
    open_report(page, api_server, "payments-received")
    customer = seeded.customers[1]
    picker = "input[list=list-customerId]"
    with page.expect_response(lambda r: "/v1/lookups/customers" in r.url):
        page.fill(picker, customer.name)
    page.wait_for_selector(f"#list-customerId option[value='{customer.name}']", state="attached")
    with page.expect_response(lambda r: f"customerId={customer.id}" in r.url):
        page.click("form.filters button[type=submit]")
    page.wait_for_selector(".results[aria-busy='false'] .cards")
    assert f"customerId={customer.id}" in page.url
    window = page.get_attribute(".window", "data-window").split("/")
    rows = [
        p
        for p in seeded.payments
        if p.customer_id == customer.id and window[0] <= p.paid_at.date().isoformat() < window[1]
    ]
    assert int(shown(page, ".card[data-field]")["totalPayments|"]) == len(rows)
    assert page.input_value(picker) == customer.name  # the name survives in the URL


def test_drill_down_exports_the_clicked_rows_with_live_progress_and_checksum(
    context: Any,
    api_server: ServerThread,
    client: httpx.Client,
    database_url: str,
    seeded: Seeded,
    tmp_path: Path,
) -> None:
    page = sign_in(context, api_server, database_url, seeded.tenant.admin.id)
    open_report(page, api_server, "payments-received")
    window = page.get_attribute(".window", "data-window").split("/")
    page.click("[data-chart=paymentsByMethod] button.bar-row[data-key=check]")
    page.wait_for_selector("#export-dialog[open]")
    assert page.get_attribute("dd[data-filter=method]", "data-value") == "check"
    formats = page.eval_on_selector_all("#export-format option", "o => o.map(x => x.value)")
    assert {"csv", "json"} <= set(formats)
    shot(page, "export-dialog")
    page.select_option("#export-format", "csv")
    with page.expect_response(lambda r: r.url.endswith("/v1/reports/export")) as created:
        page.click("#export-dialog button[type=submit]")
    job_id = created.value.json()["jobId"]

    page.click("nav >> text=Exports")
    row = f"tr[data-job='{job_id}']"
    page.wait_for_selector(f"{row}[data-status=completed]", timeout=JOB_TIMEOUT_MS)
    assert page.get_attribute(f"{row} [data-progress]", "data-progress") == "100"
    shown_sum = page.get_attribute(f"{row} [data-checksum]", "data-checksum")
    shot(page, "exports")
    with page.expect_download() as download:
        page.click(f"{row} [data-action=download]")
    target = tmp_path / "export.csv"
    download.value.save_as(target)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == shown_sum

    # The export's filters select exactly the clicked rows: checks paid in the window.
    job = client.get(
        f"/v1/reports/export/{job_id}", headers=seeded.tenant.headers(seeded.tenant.admin)
    ).json()["job"]
    assert job["filters"]["method"] == "check"
    expected = {
        p.id
        for p in seeded.payments
        if p.method == "check" and window[0] <= p.paid_at.date().isoformat() < window[1]
    }
    text = target.read_text(encoding="utf-8-sig")
    exported = set(re.findall(r"pay_[A-Za-z0-9]+_\d+", text))
    assert exported == expected


@pytest.mark.parametrize(
    ("path", "chart", "bucket_filter", "extra"),
    [
        ("payments-received", "amountDistribution", "amountBucket", "currency"),
        ("invoice-settlement-time", "settlementTimeDistribution", "settlementTimeBucket", "asOf"),
        ("quote-cycle-time", "cycleTimeDistribution", "cycleTimeBucket", None),
    ],
)
def test_a_histogram_bar_exports_exactly_the_rows_it_counts(
    context: Any,
    api_server: ServerThread,
    client: httpx.Client,
    database_url: str,
    seeded: Seeded,
    path: str,
    chart: str,
    bucket_filter: str,
    extra: str | None,
) -> None:
    page = sign_in(context, api_server, database_url, seeded.tenant.admin.id)
    open_report(page, api_server, path)
    window = page.get_attribute(".window", "data-window").split("/")
    bars = page.query_selector_all(f"[data-chart={chart}] button.column")
    assert bars, "no drillable bar"
    bar = max(bars, key=lambda b: int(b.get_attribute("data-raw")))  # the fullest bar
    label, shown_count = bar.get_attribute("data-key"), int(bar.get_attribute("data-raw"))
    bar.focus()  # by keyboard, like the other drill-downs
    page.keyboard.press("Enter")
    page.wait_for_selector("#export-dialog[open]")
    key = re.sub(r"[^0-9+-]", "", label)
    assert page.get_attribute(f"dd[data-filter={bucket_filter}]", "data-value") == key
    if extra:
        assert page.query_selector(f"dd[data-filter={extra}]") is not None
    shot(page, f"export-dialog-{chart}")
    page.select_option("#export-format", "json")
    with page.expect_response(lambda r: r.url.endswith("/v1/reports/export")) as created:
        page.click("#export-dialog button[type=submit]")
    job_id = created.value.json()["jobId"]
    headers = seeded.tenant.headers(seeded.tenant.admin)
    deadline = time.monotonic() + JOB_TIMEOUT_MS / 1000
    while True:
        job = client.get(f"/v1/reports/export/{job_id}", headers=headers).json()["job"]
        if job["status"] in ("completed", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert job["status"] == "completed", job
    assert job["filters"][bucket_filter] == key
    rows = json.loads(client.get(job["downloadUrl"], headers=headers).content, parse_float=Decimal)
    assert len(rows) == job["totalRows"] == shown_count  # the bar's count, the export's rows
    if path == "payments-received":
        # Independent of the SQL: the USD payments of the window whose whole amount is in
        # the bucket's range.
        low, _, high = key.partition("-")
        expected = {
            p.id
            for p in seeded.payments
            if p.currency == "USD"
            and window[0] <= p.paid_at.date().isoformat() < window[1]
            and int(low.rstrip("+")) <= int(p.amount) <= (int(high) if high else 10**12)
        }
        assert {row["payment_id"] for row in rows} == expected


def test_the_customer_search_reaches_customers_beyond_the_top_ten(
    context: Any, api_server: ServerThread, database_url: str, seeded: Seeded
) -> None:
    page = sign_in(context, api_server, database_url, seeded.tenant.admin.id)
    open_report(page, api_server, "payments-received")
    chart = "[data-chart=paymentsByCustomer]"
    rest = page.get_attribute(f"{chart} .bar-row.rest", "data-raw")
    assert rest is not None  # the server summed the customers beyond ten
    assert int(rest) > 0
    customer = seeded.customers[13]
    with page.expect_response(lambda r: "/v1/lookups/customers" in r.url and "q=" in r.url):
        page.fill(f"{chart} input[type=search]", customer.name)
    row = page.wait_for_selector(f"{chart} button.bar-row.found[data-key='{customer.name}']")
    row.click()
    page.wait_for_selector("#export-dialog[open]")
    assert page.get_attribute("dd[data-filter=customerId]", "data-value") == customer.id


def test_an_open_exports_page_follows_a_new_job_to_100_percent_without_polling(
    context: Any,
    api_server: ServerThread,
    client: httpx.Client,
    database_url: str,
    seeded: Seeded,
) -> None:
    page = sign_in(context, api_server, database_url, seeded.tenant.exporter.id)
    listed: list[str] = []
    page.on(
        "request",
        lambda r: listed.append(r.url) if r.url.split("?")[0].endswith("/export") else None,
    )
    page.goto(f"{api_server.base_url}/exports")
    page.wait_for_selector("main[aria-busy='false']")
    page.wait_for_selector("body[data-live=on]", state="attached")
    # Created elsewhere (another tab, a script): only the server's push can show it here.
    created = client.post(
        "/v1/reports/export",
        json={"reportType": "time_approvals", "format": "json", "filters": {}},
        headers=seeded.tenant.headers(seeded.tenant.exporter),
    )
    assert created.status_code == 202, created.text
    job_id = created.json()["jobId"]
    row = f"tr[data-job='{job_id}']"
    page.wait_for_selector(f"{row}[data-status=completed]", timeout=JOB_TIMEOUT_MS)
    assert page.get_attribute(f"{row} [role=progressbar]", "aria-valuenow") == "100"
    job = client.get(
        f"/v1/reports/export/{job_id}", headers=seeded.tenant.headers(seeded.tenant.exporter)
    ).json()["job"]
    assert page.get_attribute(f"{row} [data-checksum]", "data-checksum") == job["checksumSha256"]
    page.wait_for_selector(".toast.success")
    assert "ready to download" in page.inner_text(".toast.success")
    assert len(listed) == 1, listed  # the list was fetched once: no polling


def test_a_new_row_refreshes_an_open_page(
    context: Any,
    api_server: ServerThread,
    database_url: str,
    owner_engine: Engine,
    seeded: Seeded,
) -> None:
    page = sign_in(context, api_server, database_url, seeded.tenant.admin.id)
    open_report(page, api_server, "payments-received", "?preset=this_month")
    page.wait_for_selector("body[data-live=on]", state="attached")
    before = int(shown(page, ".card[data-field]")["totalPayments|"])
    from datetime import UTC, datetime

    with Session(owner_engine, expire_on_commit=False) as db:
        payment = create_payment(
            db,
            org=seeded.tenant.org,
            customer=seeded.customers[1],
            paid_at=datetime.now(UTC) - timedelta(minutes=1),
        )
    seeded.payments.append(payment)
    started = time.monotonic()
    while shown(page, ".card[data-field]")["totalPayments|"] != str(before + 1):
        assert time.monotonic() - started < 10, "the page did not refresh within 10 s"
        page.wait_for_timeout(100)


def test_empty_and_error_states_show_what_happened(
    context: Any,
    api_server: ServerThread,
    client: httpx.Client,
    database_url: str,
    seeded: Seeded,
) -> None:
    page = sign_in(context, api_server, database_url, seeded.tenant.admin.id)
    page.goto(
        f"{api_server.base_url}/reports/payments-received?preset=custom&from=2001-01-01&to=2001-01-31"
    )
    page.wait_for_selector(".state.empty")
    assert "No payments in this window" in page.inner_text(".results")
    shot(page, "report-payments-received-empty")
    # A filter the API refuses: its problem+json detail is shown.
    with page.expect_response(lambda r: "/v1/reports/summary/" in r.url) as refused:
        page.goto(f"{api_server.base_url}/reports/payments-received?currency=usd1")
    assert refused.value.status == 422
    page.wait_for_selector(".results .state.error")
    detail = client.get(
        refused.value.url, headers=seeded.tenant.headers(seeded.tenant.admin)
    ).json()["detail"]
    assert detail in page.inner_text(".results .state.error")
    shot(page, "report-payments-received-error")


def test_keyboard_reaches_the_controls_with_a_visible_focus(
    context: Any, api_server: ServerThread, database_url: str, seeded: Seeded
) -> None:
    page = sign_in(context, api_server, database_url, seeded.tenant.admin.id)
    open_report(page, api_server, "payments-received")
    page.keyboard.press("Tab")
    focused = page.evaluate(
        "(() => { const e = document.activeElement, s = getComputedStyle(e);"
        " return [e.className, s.outlineStyle, s.outlineWidth]; })()"
    )
    assert focused == ["skip", "solid", "3px"]
    # Tab until a drillable bar has the focus, then Enter opens the export dialog.
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('bar-row')"):
            break
    else:
        raise AssertionError("no bar reachable by keyboard")
    page.keyboard.press("Enter")
    page.wait_for_selector("#export-dialog[open]")
    assert page.evaluate("document.activeElement.id") == "export-format"
    page.keyboard.press("Escape")
    page.wait_for_selector("#export-dialog:not([open])", state="attached")


def test_a_view_only_user_sees_no_export_control(
    context: Any, api_server: ServerThread, database_url: str, seeded: Seeded
) -> None:
    page = sign_in(context, api_server, database_url, seeded.tenant.viewer.id)
    open_report(page, api_server, "payments-received")
    assert page.query_selector("button.bar-row") is None
    assert page.query_selector("button.column") is None
    assert page.query_selector("text=Export all") is None
    assert not page.is_visible("nav >> text=Audit")
    page.goto(f"{api_server.base_url}/audit")
    page.wait_for_selector("[role=alert]")
    assert "audit.view_audit_logs" in page.inner_text("main")
    shot(page, "viewer-no-audit")


def test_audit_page_shows_events_and_the_chain(
    context: Any, api_server: ServerThread, database_url: str, seeded: Seeded
) -> None:
    page = sign_in(context, api_server, database_url, seeded.tenant.admin.id)
    open_report(page, api_server, "quote-cycle-time")  # writes audit events
    page.click("nav >> text=Audit")
    page.wait_for_selector("[data-chain]")
    page.wait_for_selector("table.audit tbody tr")
    assert page.get_attribute("[data-chain]", "data-chain") == "ok"
    assert "report.view" in page.inner_text("table.audit") or page.query_selector(
        "table.audit tbody tr"
    )
    shot(page, "audit")


def run_axe(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    result: dict[str, Any] = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("width", [768, 1440])
def test_axe_finds_no_serious_violation(
    browser: Any, api_server: ServerThread, database_url: str, seeded: Seeded, width: int
) -> None:
    # axe is injected as an inline script, which the dashboard's CSP rightly refuses.
    context = browser.new_context(locale="en-US", bypass_csp=True)
    page = sign_in(context, api_server, database_url, seeded.tenant.admin.id)
    page.set_viewport_size({"width": width, "height": 900})
    problems: dict[str, list[str]] = {}
    for path in (*(f"/reports/{p}" for p in REPORT_PATHS), "/exports", "/audit"):
        page.goto(f"{api_server.base_url}{path}")
        page.wait_for_selector("main[aria-busy='false']")
        page.wait_for_load_state("networkidle")
        found = run_axe(page)
        if found:
            problems[path] = [f"{v['id']}: {v['help']} ({len(v['nodes'])})" for v in found]
        # The layout holds: nothing wider than the window.
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} overflows by {overflow}px at {width}px"
    if width == 768:
        page.goto(f"{api_server.base_url}/reports/payments-received")
        page.wait_for_selector(".results[aria-busy='false'] .cards")
        shot(page, "report-payments-received-768px")
    context.close()
    assert problems == {}
