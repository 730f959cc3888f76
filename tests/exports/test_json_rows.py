"""JSON rows built as text (exports/json_rows.py) are the bytes of ``row_to_json``.

The oracle is the JSON writer as it was: ``COPY (SELECT row_to_json(r) FROM (full row
query) AS r)``, the names joined per row, made into the array. The writer runs on the
same rows (every report, lean query and name maps; and a chosen-columns export, which
has neither), and on a row query of every kind of value a report may select: hostile
text (quotes, backslashes, control characters, the COPY dialect's own bytes, line
breaks, non-ASCII), numeric ``NaN`` and infinities, dates BC and infinite, booleans,
integers, timestamps, NULLs.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy.orm import Session

from pivotal_reporting.exports import writers
from pivotal_reporting.exports.json_rows import JSON_COPY_OPTIONS
from pivotal_reporting.exports.name_lookups import _json_splice
from pivotal_reporting.reports import registry
from pivotal_reporting.reports.base import ExportQuery, ReportContext
from pivotal_reporting.rls import TENANT_ROLE
from tests.exports.test_name_lookups import _seed
from tests.factories import Tenant, create_customer, create_payment

# Ids and references from a source system: no CHECK on their form.
HOSTILE = [
    'q"uote',
    "back\\slash",
    "ctl\x01\x02\x1f\x7f",
    "tab\tline\ncr\r",
    "",
    "é 報告 \u2028",
    "\\.",
    "plain",
]

_ENTER = (
    "SELECT set_config('role', %s, true), set_config('app.organization_id', %s, true), "
    "set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO, YMD', true), "
    "set_config('extra_float_digits', '1', true)"
)


async def _progress(rows: int) -> bool:
    return True


async def _write(url: str, org_id: str, query: ExportQuery) -> bytes:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute(_ENTER, (TENANT_ROLE, org_id))
        sink = io.BytesIO()
        await writers.write_json(conn, query, sink, _progress)  # type: ignore[arg-type]
        return sink.getvalue()


def _oracle(url: str, org_id: str, query: ExportQuery) -> bytes:
    """The former writer: ``row_to_json`` of the full row query, as an array."""
    rows = []
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(_ENTER, (TENANT_ROLE, org_id))
        copy_sql = (
            f"COPY (SELECT row_to_json(r) FROM ({query.sql}) AS r) "
            f"TO STDOUT WITH ({JSON_COPY_OPTIONS})"
        )
        with cur.copy(copy_sql, query.params or None) as copy:
            rows = [bytes(row) for row in copy]
    body = b"".join(rows)
    return b"[\n" + body[:-1].replace(b"\n", b",\n") + b"\n]\n" if rows else b"[]\n"


@pytest.mark.parametrize("report_type", [r.report_type for r in registry.all_reports()])
def test_every_report_writes_the_bytes_of_row_to_json(
    database_url: str, tenant: Tenant, other_tenant: Tenant, db: Session, report_type: str
) -> None:
    _seed(db, tenant)
    _seed(db, other_tenant)
    for i, reference in enumerate(HOSTILE):
        customer = create_customer(db, org=tenant.org, id=f"{reference}{i}j", name=reference)
        create_payment(
            db,
            org=tenant.org,
            customer=customer,
            id=f"{reference}{i}p",
            reference=reference or None,
        )
    report = registry.get_report(report_type)
    ctx = ReportContext(
        tenant.org.id, tenant.viewer.id, "UTC", "USD", datetime(2024, 6, 1, tzinfo=UTC)
    )
    query = report.export_query(ctx, report.filters_model())
    expected = _oracle(database_url, tenant.org.id, query)
    assert expected.count(b"\n") > 10
    assert asyncio.run(_write(database_url, tenant.org.id, query)) == expected
    # without the maps (a chosen-columns export runs the full query)
    joined = replace(query, lean_sql=None, lookups=())
    assert asyncio.run(_write(database_url, tenant.org.id, joined)) == expected


_VALUES = """
SELECT * FROM (VALUES
  (1, %(t0)s::text, 'open'::text, 'NaN'::numeric, '0044-03-15 BC'::date, true,
   2::smallint, 3::bigint, '2024-01-15 10:30:00.123456+00'::timestamptz, 1.5::float8,
   'ab'::char(4), 'v'::varchar),
  (2, %(t1)s::text, 'closed', 'Infinity', 'infinity', false, NULL, NULL, NULL, 'NaN', NULL, NULL),
  (3, %(t2)s::text, NULL, '-Infinity', '-infinity', NULL, -2, -3, '-infinity', '-Infinity', '', ''),
  (4, %(t3)s::text, 'x', -0.00, '10000-01-01', true, 0, 0, 'infinity', -0.0, ' ', 'q"'),
  (5, %(t4)s::text, 'y', 12345678901234567890.123, '2024-02-29', false, 1, 1,
   '0044-03-15 10:00 BC', 1e300, 'x', 'é'),
  (6, %(t5)s::text, 'z', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (7, %(t6)s::text, 'w', 1e-20, '2024-01-01', true, 1, 1, '2024-01-01', 0.1, 'y', 'z'),
  (8, %(t7)s::text, 'v', 7.50, '2024-01-02', false, 1, 1, '2024-01-02', 2, 'z', 'w')
) AS v(n, "open text", closed, amount, day, flag, small, big, at, ratio, padded, "var char")
WHERE %(org)s::text IS NOT NULL
ORDER BY n
"""


def test_every_kind_of_value_is_written_as_row_to_json_writes_it(
    database_url: str, tenant: Tenant
) -> None:
    params: dict[str, object] = {f"t{i}": value for i, value in enumerate(HOSTILE)}
    params["org"] = tenant.org.id
    query = ExportQuery(
        sql=_VALUES,
        params=params,
        columns=(
            "n",
            "open text",
            "closed",
            "amount",
            "day",
            "flag",
            "small",
            "big",
            "at",
            "ratio",
            "padded",
            "var char",
        ),
        closed_text_columns=frozenset({"closed"}),
    )
    expected = _oracle(database_url, tenant.org.id, query)
    assert b'"NaN"' in expected
    assert b'"0044-03-15 BC"' in expected
    assert asyncio.run(_write(database_url, tenant.org.id, query)) == expected


def test_an_empty_export_is_an_empty_array(database_url: str, tenant: Tenant) -> None:
    query = ExportQuery(
        sql="SELECT 1 AS n WHERE %(org)s::text IS NULL", params={"org": tenant.org.id}
    )
    assert asyncio.run(_write(database_url, tenant.org.id, query)) == b"[]\n"


def test_the_splice_reads_quoted_id_cells_and_fails_on_an_unknown_id() -> None:
    splice = _json_splice([(1, {b"u1": b'"u1","user_name":"Ann"', b"\x01a\x02b\x01": b'"a"'})])
    assert (
        splice(b'{"user_id":\x02u1\x02,"n":1}\n') == b'{"user_id":"u1","user_name":"Ann","n":1}\n'
    )
    assert splice(b'{"user_id":\x02\x01a\x02b\x01\x02}\n') == b'{"user_id":"a"}\n'
    with pytest.raises(KeyError):
        splice(b'{"user_id":\x02u2\x02}\n')
