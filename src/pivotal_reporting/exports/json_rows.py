"""JSON rows as text built by PostgreSQL without ``row_to_json`` (the same bytes).

``row_to_json`` looks up how to write each column's type again for every row (four
catalog cache lookups per value) and costs as much as the rest of the export's row;
here each value is rendered by an expression chosen once, from the column's type:

- ``boolean``: ``true``/``false``; integers: their text;
- ``numeric``: its text when finite (``NaN`` and the infinities are quoted, as
  ``row_to_json`` quotes what is not a JSON number);
- ``date``: ``"`` + its text + ``"``: with ``DateStyle`` ISO, ``date_out`` writes what the
  JSON encoder writes (both ``YYYY-MM-DD``, `` BC``, ``infinity``); the select sets it;
- closed text columns (``ExportQuery.closed_text_columns``: CHECK-constrained
  vocabularies and server-made formats, which hold no ``"``, ``\\`` or control
  character): ``"`` + the text + ``"``;
- anything else (text that can hold user text, timestamps, ...): ``to_json(value)``,
  the function ``row_to_json`` uses per value;
- NULL: ``null``.

The constant keys (``{"time_entry_id":``, ``,"user_id":``) are written between the
values in the same expression. For a report's own row query (``ExportQuery.parts``) the
``to_json`` of open text is computed before the sort, by the parallel workers, and the
rest over the sorted rows by the process that merges them (measured at 1M rows on 2
cores: payments, four open text columns, 3.1 -> 2.7 s; time approvals, two, about
0.1 s slower, as the merging process kept up with the writer already). A column named in ``raw`` is left out of the text and
selected alone, as stored, so that the row splits around it: ``COPY`` writes ``segment
\\x02 id \\x02 segment ...`` and the name splice (name_lookups.py) replaces the id by its
JSON id and name. Segments never hold ``\\x01``, ``\\x02``, CR or LF (JSON escapes them),
so ``COPY`` never quotes one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable

import psycopg
from psycopg import sql

from pivotal_reporting.reports.base import ExportQuery

BOOLEAN_OID = 16
INTEGER_OIDS = frozenset({20, 21, 23})  # int8, int2, int4
NUMERIC_OID = 1700
DATE_OID = 1082
PLAIN_TEXT_OIDS = frozenset({25, 1043})  # text, varchar (bpchar keeps its padding in JSON)
OPEN_TEXT_OIDS = frozenset({19, 25, 1042, 1043})  # name, text, bpchar, varchar
_COLUMN = re.compile(r'[A-Za-z_][A-Za-z0-9_]*\.(?:[A-Za-z_][A-Za-z0-9_]*|"[^"]+")')
# One COPY row per JSON row: the CSV dialect of the JSON writer (writers.py), whose
# quote and delimiter bytes never occur in JSON text.
JSON_COPY_OPTIONS = "FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02'"


def json_value(expression: str, type_oid: int, *, closed: bool) -> str:
    """SQL: the JSON text ``row_to_json`` writes for the value of ``expression``.

    An expression other than a column reference is written once in the result (it is
    evaluated as often as it is written): a boolean or a ``numeric`` then goes through
    ``to_json``, the form that needs it once."""
    e = expression
    once = _COLUMN.fullmatch(e) is None
    if type_oid == BOOLEAN_OID and not once:
        return f"CASE WHEN {e} THEN 'true' WHEN NOT {e} THEN 'false' ELSE 'null' END"
    if type_oid in INTEGER_OIDS:
        rendered = f"({e})::text"
    elif type_oid == NUMERIC_OID and not once:
        rendered = (
            f"CASE WHEN {e} < 'Infinity'::numeric AND {e} > '-Infinity'::numeric "
            f"THEN ({e})::text ELSE to_json({e})::text END"
        )
    elif type_oid == DATE_OID or (closed and type_oid in PLAIN_TEXT_OIDS):
        rendered = f"'\"' || ({e})::text || '\"'"
    else:
        rendered = f"to_json({e})::text"
    return f"COALESCE({rendered}, 'null')"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def json_select(
    conn: psycopg.AsyncConnection[object], query: ExportQuery, raw: Collection[str] = ()
) -> str:
    """``SELECT`` of ``query``'s rows as JSON object text, split around the ``raw``
    columns (see the module docstring); the rows in ``query``'s order.

    With the query's parts (a report's own row query) the text is computed before the
    sort, in the same query: by the parallel workers, not by the one process that
    merges their sorted rows. Otherwise it is computed over the sorted rows."""
    async with conn.cursor() as cur:
        # date_out writes the JSON encoder's dates in ISO style only (module docstring).
        await cur.execute("SELECT set_config('DateStyle', 'ISO, YMD', true)")
        await cur.execute(
            sql.SQL("SELECT * FROM ({rows}) AS r LIMIT 0").format(rows=sql.SQL(query.sql)),
            query.params or None,
        )
        types = [(column.name, column.type_code) for column in cur.description or []]
    parts = query.parts
    closed = query.closed_text_columns
    names = [sql.Identifier(name).as_string(conn) for name, _ in types]
    if parts is not None and _sorts_by_input_columns(parts.order_by):
        if [name for name, _ in parts.columns] != [name for name, _ in types]:
            raise ValueError("the query's parts do not select its columns")
        # The JSON text of open text (to_json, the costly one) is computed before the
        # sort, by the parallel workers; the rest over the sorted rows, where the merging
        # process keeps up with the writer anyway.
        early = {
            name
            for name, oid in types
            if name not in raw and name not in closed and oid in OPEN_TEXT_OIDS
        }
        selected = [
            f"{json_value(expression, oid, closed=False) if name in early else expression}"
            f" AS {quoted}"
            for (name, expression), (_, oid), quoted in zip(
                parts.columns, types, names, strict=True
            )
        ]
        values = [
            f"r.{quoted}"
            if name in raw or name in early
            else json_value(f"r.{quoted}", oid, closed=name in closed)
            for (name, oid), quoted in zip(types, names, strict=True)
        ]
        outputs = _segments([name for name, _ in types], values, raw)
        return f"SELECT {', '.join(outputs)} FROM ({parts.select(selected)}) AS r"  # noqa: S608 -- reviewed: the report's row query, identifiers quoted, constants only
    values = [
        f"r.{quoted}" if name in raw else json_value(f"r.{quoted}", oid, closed=name in closed)
        for (name, oid), quoted in zip(types, names, strict=True)
    ]
    outputs = _segments([name for name, _ in types], values, raw)
    return f"SELECT {', '.join(outputs)} FROM ({query.sql}) AS r"  # noqa: S608 -- reviewed: the report's row query, identifiers quoted, constants only


def _sorts_by_input_columns(order_by: str) -> bool:
    """Every ORDER BY item is qualified (``t.id``): it cannot name an output column, so
    the query orders the same rows whatever it selects."""
    return all(_COLUMN.fullmatch(item.strip()) for item in order_by.split(","))


def _segments(names: Iterable[str], values: Iterable[str], raw: Collection[str]) -> list[str]:
    """The selected expressions: the JSON text in segments (each column's key, then its
    value's JSON text), the ``raw`` columns' values alone between them."""
    outputs: list[str] = []
    pieces: list[str] = []
    for at, (name, value) in enumerate(zip(names, values, strict=True)):
        # the name escaped as row_to_json escapes it (it is a report's constant)
        pieces.append(
            _literal(("{" if at == 0 else ",") + json.dumps(name, ensure_ascii=False) + ":")
        )
        if name in raw:
            outputs += (" || ".join(pieces), value)
            pieces = []
        else:
            pieces.append(value)
    pieces.append("'}'")
    outputs.append(" || ".join(pieces))
    return outputs
