"""SQL fragments for deterministic pseudo-randomness.

``random()`` depends on the plan (parallel workers draw their own streams), so each row
instead hashes its own number: ``hashint8extended(g * 8 + i, stream_seed)`` gives 64
bits, i.e. four independent 16-bit uniforms. Each (seed, organization, table) has its own
stream seed (:func:`stream_seed`, passed as ``%(seed_<stream>)s``). Queries compute the
hashes once per row in an ``OFFSET 0`` subquery (a fence that keeps the planner from
re-evaluating them per reference) and read uniforms from them with :func:`uniform`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from pivotal_reporting.demo.catalog import ROW_DIGITS

STREAMS = ("customers", "projects", "quotes", "invoices", "payments", "time_entries")


def stream_seed(seed: int, slug: str, stream: str) -> int:
    """A signed 64-bit seed for one stream of one organization, stable across runs."""
    digest = hashlib.blake2b(f"{seed}:{slug}:{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def row_hashes(stream: str, count: int) -> str:
    """``count`` hash columns ``h1``... for row ``g`` of ``stream`` (e.g. ``"quotes"``)."""
    return ", ".join(
        f"hashint8extended(g * 8 + {i}, %(seed_{stream})s) AS h{i}" for i in range(1, count + 1)
    )


def uniform(k: int, prefix: str = "") -> str:
    """The ``k``-th uniform in [0, 1) drawn from the row's hash columns (4 per hash)."""
    return f"((({prefix}h{k // 4 + 1} >> {16 * (k % 4)}) & 65535)::float8 / 65536)"


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def weighted_choice(
    choices: Sequence[tuple[str, float]], u: str, *, cover: str | None = None
) -> str:
    """A CASE picking a value with the given relative weights by the uniform ``u``.

    With ``cover`` (an SQL integer, e.g. the row number ``g``), rows 1..len(choices) take
    each value in turn, so every value appears even in a tiny data set.
    """
    total = sum(weight for _, weight in choices)
    parts = ["CASE"]
    if cover is not None:
        values = ", ".join(quote_literal(value) for value, _ in choices)
        parts.append(f"WHEN {cover} <= {len(choices)} THEN (ARRAY[{values}])[{cover}]")
    cumulative = 0.0
    for value, weight in choices[:-1]:
        cumulative += weight / total
        parts.append(f"WHEN {u} < {cumulative:.6f} THEN {quote_literal(value)}")
    parts.append(f"ELSE {quote_literal(choices[-1][0])} END")
    return " ".join(parts)


def log_uniform(u: str, low: float, high: float) -> str:
    """A money amount between ``low`` and ``high``, uniform on a log scale, in cents."""
    return f"round(exp(ln({low}) + {u} * ln({high / low}))::numeric, 2)"


def pick_word(words_param: str, index: str) -> str:
    """Element ``index`` (0-based, wraps around) of the text[] parameter ``words_param``."""
    return (
        f"(%({words_param})s::text[])"
        f"[1 + mod(({index})::bigint, cardinality(%({words_param})s::text[]))]"
    )


def working_day(position: str) -> str:
    """The working day (a date) at ``position`` in [0, 1) of the demo's two-year span."""
    w = f"(floor(({position}) * %(working_days)s)::int)"
    return f"(%(first_monday)s::date + ({w} / 5) * 7 + mod({w}, 5))"


def local_time(day: str, hours_from: float, hours_span: float, u: str) -> str:
    """A timestamptz on ``day`` between the given local hours, in the org's timezone."""
    return (
        f"(({day}) + make_interval(secs => round(({hours_from} + {hours_span} * {u}) * 3600)))"
        " AT TIME ZONE %(tz)s"
    )


def timeline_position(u: str) -> str:
    """Where row ``g`` of ``%(n)s`` falls in [0, 1) of the span: in row order, jittered.

    Rows are numbered chronologically; the power makes recent months busier (growth).
    """
    return f"power((g - 1 + {u}) / %(n)s::float8, 0.8)"


def customer_pick(u: str) -> str:
    """A customer number in 1..%(customers)s; a few customers get most of the business.

    The skewed index is scattered by a prime so the big customers are not all 1, 2, 3.
    """
    return f"(1 + mod(floor(%(customers)s * power({u}, 1.5))::bigint * 1000003, %(customers)s))"


def project_count(customer: str) -> str:
    """How many projects (1-4) customer number ``customer`` has."""
    return f"(1 + (hashint8extended(({customer})::bigint, %(seed_customers)s) & 3))::int"


def customer_id(customer: str) -> str:
    return f"('cus_' || %(slug)s || '_' || lpad(({customer})::text, 6, '0'))"


def project_id(customer: str, project: str) -> str:
    return f"('prj_' || %(slug)s || '_' || lpad(({customer})::text, 6, '0') || '_' || ({project}))"


def row_id(prefix: str, row: str = "g") -> str:
    """The id of business row number ``row``, e.g. ``quo_acme_00000042``."""
    return f"('{prefix}_' || %(slug)s || '_' || lpad(({row})::text, {ROW_DIGITS}, '0'))"
