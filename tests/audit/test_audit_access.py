"""GET /v1/audit-logs: auth matrix, own organization only, filters, cursor pagination."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.audit.audit_helpers import record_events
from tests.factories import Tenant

URL = "/v1/audit-logs"


@pytest.fixture
def seeded(tenant: Tenant, database_url: str) -> Tenant:
    events = [
        {
            "user_id": tenant.exporter.id if i % 2 else tenant.viewer.id,
            "action": "export_job_created" if i % 3 else "export_downloaded",
            "resource": "export_jobs",
            "resource_id": f"job_{i}",
            "details": {"n": i},
        }
        for i in range(7)
    ]
    record_events(database_url, tenant.org.id, events)
    return tenant


def test_anonymous_is_401(client: httpx.Client) -> None:
    response = client.get(URL)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("who", ["nobody", "viewer", "exporter"])
def test_without_permission_is_403_and_audited(
    client: httpx.Client, seeded: Tenant, who: str
) -> None:
    user = getattr(seeded, who)
    response = client.get(URL, headers=seeded.headers(user))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    page = client.get(URL, params={"action": "access_denied"}, headers=seeded.headers(seeded.admin))
    denial = page.json()["data"][0]
    assert denial["userId"] == user.id
    assert denial["resourceId"] == URL


def test_admin_reads_own_organization_newest_first(
    client: httpx.Client, seeded: Tenant, other_tenant: Tenant, database_url: str
) -> None:
    record_events(
        database_url,
        other_tenant.org.id,
        [{"user_id": other_tenant.admin.id, "action": "secret", "resource": "x"}],
    )
    body = client.get(URL, headers=seeded.headers(seeded.admin)).json()
    rows = body["data"]
    assert [row["seq"] for row in rows] == [7, 6, 5, 4, 3, 2, 1]
    assert {row["organizationId"] for row in rows} == {seeded.org.id}
    assert set(rows[0]) >= {"seq", "prevHash", "hash", "createdAt", "resourceId", "userId"}
    assert rows[-1]["prevHash"] == "0" * 64
    assert all(newer["prevHash"] == older["hash"] for newer, older in itertools.pairwise(rows))
    assert body["nextCursor"] is None
    # The other organization's admin sees only their own event.
    theirs = client.get(URL, headers=other_tenant.headers(other_tenant.admin)).json()["data"]
    assert [row["action"] for row in theirs] == ["secret"]


def test_another_organization_id_is_403(
    client: httpx.Client, seeded: Tenant, other_tenant: Tenant
) -> None:
    response = client.get(
        URL, params={"organizationId": other_tenant.org.id}, headers=seeded.headers(seeded.admin)
    )
    assert response.status_code == 403


def test_filters(client: httpx.Client, seeded: Tenant) -> None:
    headers = seeded.headers(seeded.admin)
    downloads = client.get(URL, params={"action": "export_downloaded"}, headers=headers).json()[
        "data"
    ]
    assert {row["action"] for row in downloads} == {"export_downloaded"}
    assert len(downloads) == 3
    mine = client.get(URL, params={"userId": seeded.exporter.id}, headers=headers).json()["data"]
    assert {row["userId"] for row in mine} == {seeded.exporter.id}
    assert len(mine) == 3
    now = datetime.now(UTC)
    window = {
        "from": (now - timedelta(hours=1)).isoformat(),
        "to": (now + timedelta(hours=1)).isoformat(),
    }
    assert len(client.get(URL, params=window, headers=headers).json()["data"]) == 7
    past = {"from": "2020-01-01T00:00:00Z", "to": "2020-02-01T00:00:00Z"}
    assert client.get(URL, params=past, headers=headers).json()["data"] == []


def test_cursor_pagination_walks_every_row_once(client: httpx.Client, seeded: Tenant) -> None:
    headers = seeded.headers(seeded.admin)
    for order, expected in (("desc", [7, 6, 5, 4, 3, 2, 1]), ("asc", [1, 2, 3, 4, 5, 6, 7])):
        seen: list[int] = []
        params: dict[str, str | int] = {"limit": 3, "order": order}
        while True:
            body = client.get(URL, params=params, headers=headers).json()
            seen += [row["seq"] for row in body["data"]]
            if body["nextCursor"] is None:
                break
            assert str(body["nextCursor"]).isascii()
            params["cursor"] = body["nextCursor"]
        assert seen == expected


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2024-01-01T00:00:00"},  # naive
        {"from": "yesterday"},
        {"from": "2024-02-01T00:00:00Z", "to": "2024-01-01T00:00:00Z"},
        {"cursor": "not-a-cursor"},
        {"limit": 0},
        {"limit": 501},
        {"order": "sideways"},
    ],
)
def test_bad_input_is_422_problem(
    client: httpx.Client, seeded: Tenant, params: dict[str, str]
) -> None:
    response = client.get(URL, params=params, headers=seeded.headers(seeded.admin))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"]
