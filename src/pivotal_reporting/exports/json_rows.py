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
values in the same expression. A column named in ``raw`` is left out of the text and
selected alone, as stored, so that the row splits around it: ``COPY`` writes ``segment
\\x02 id \\x02 segment ...`` and the name splice (name_lookups.py) replaces the id by its
JSON id and name. Segments never hold ``\\x01``, ``\\x02``, CR or LF (JSON escapes them),
so ``COPY`` never quotes one.
"""

from __future__ import annotations

import json
from collections.abc import Collection

import psycopg
from psycopg import sql

from pivotal_reporting.reports.base import ExportQuery

BOOLEAN_OID = 16
INTEGER_OIDS = frozenset({20, 21, 23})  # int8, int2, int4
NUMERIC_OID = 1700
DATE_OID = 1082
PLAIN_TEXT_OIDS = frozenset({25, 1043})  # text, varchar (bpchar keeps its padding in JSON)
# One COPY row per JSON row: the CSV dialect of the JSON writer (writers.py), whose
# quote and delimiter bytes never occur in JSON text.
JSON_COPY_OPTIONS = "FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02'"


def json_value(expression: str, type_oid: int, *, closed: bool) -> str:
    """SQL: the JSON text ``row_to_json`` writes for the value of ``expression``."""
    e = expression
    if type_oid == BOOLEAN_OID:
        return f"CASE WHEN {e} THEN 'true' WHEN NOT {e} THEN 'false' ELSE 'null' END"
    if type_oid in INTEGER_OIDS:
        rendered = f"({e})::text"
    elif type_oid == NUMERIC_OID:
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
    columns (see the module docstring); the rows in ``query``'s order."""
    async with conn.cursor() as cur:
        # date_out writes the JSON encoder's dates in ISO style only (module docstring).
        await cur.execute("SELECT set_config('DateStyle', 'ISO, YMD', true)")
        await cur.execute(
            sql.SQL("SELECT * FROM ({rows}) AS r LIMIT 0").format(rows=sql.SQL(query.sql)),
            query.params or None,
        )
        description = cur.description or []
    outputs: list[str] = []
    pieces: list[str] = []
    for at, column in enumerate(description):
        name = sql.Identifier(column.name).as_string(conn)
        # the name escaped as row_to_json escapes it (it is a report's constant)
        key = ("{" if at == 0 else ",") + json.dumps(column.name, ensure_ascii=False) + ":"
        pieces.append(_literal(key))
        if column.name in raw:
            outputs += (" || ".join(pieces), f"r.{name}")
            pieces = []
        else:
            closed = column.name in query.closed_text_columns
            pieces.append(json_value(f"r.{name}", column.type_code, closed=closed))
    pieces.append("'}'")
    outputs.append(" || ".join(pieces))
    return f"SELECT {', '.join(outputs)} FROM ({query.sql}) AS r"  # noqa: S608 -- reviewed: the report's row query, identifiers quoted, constants only
