"""Names beside their ids from per-export maps, instead of SQL joins (CSV and JSON).

A report's ``NameLookup`` (reports/source.py) is a name column that follows its id
column (``user_id, user_name``). CSV and JSON exports run the row query without it
(``ExportQuery.lean_sql``: no join, no name column) and read each looked-up table of
the organization once, in the export's own snapshot, into a map from the id as COPY
writes it to the bytes of the id and name cells as the full query would have written
them. As each row streams, the name is written beside its id. The bytes are those of
the full query:

- CSV: PostgreSQL computes each map entry's cells (``formula_safe`` of the id and of
  the name, the guard the full query applies per row) and the cells are quoted by
  PostgreSQL's CSV rule (:func:`pg_csv_cell`). The key is the unguarded id cell as COPY
  writes it in the lean row, where the id column is left unguarded.
- JSON: the row's text is split around each looked-up id, which ``COPY`` writes as
  stored (json_rows.py: ``segment \x02 id \x02 segment``); the map holds, for the id
  cell as ``COPY`` writes it in that dialect, ``to_json(id)`` and ``to_json(name)``
  (the escape ``row_to_json`` uses). Only an id holding ``\x01``, ``\x02``, CR or LF
  (or an empty one) is quoted by ``COPY``; such a row is split by its quotes.

The rows and the maps come from one REPEATABLE READ snapshot, so every id has its
entry; a missing one raises (an export fails rather than writes a wrong cell).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import psycopg
from psycopg import sql

from pivotal_reporting.reports.base import ExportQuery
from pivotal_reporting.reports.source import NameLookup
from pivotal_reporting.reports.sql import formula_safe

RowSplice = Callable[[bytes], bytes]
# The JSON writer's COPY dialect (json_rows.JSON_COPY_OPTIONS): bytes JSON text never holds.
JSON_QUOTE = "\x01"
JSON_DELIMITER = "\x02"


def pg_csv_cell(value: str | None, encoding: str, quote: str = '"', delimiter: str = ",") -> bytes:
    """``value`` as PostgreSQL's ``COPY (FORMAT csv)`` writes one cell of a multi-column
    row: NULL empty; quoted (quotes doubled) when empty or holding the delimiter, the
    quote, CR or LF."""
    if value is None:
        return b""
    # plain `in` tests: run once per map entry (25,000 projects), a generator costs 3x
    if value == "" or quote in value or delimiter in value or "\n" in value or "\r" in value:
        return (quote + value.replace(quote, quote * 2) + quote).encode(encoding)
    return value.encode(encoding)


def lean_columns(query: ExportQuery) -> tuple[str, ...]:
    """The columns of ``query.lean_sql``: ``query.columns`` without the looked-up names."""
    looked_up = {lookup.name for lookup in query.lookups}
    return tuple(c for c in query.columns if c not in looked_up)


def lean_query(query: ExportQuery) -> ExportQuery:
    """``query`` as its lean row query; the ids that get their cells from the maps are
    marked closed, so the CSV guard does not run on them per row."""
    assert query.lean_sql is not None
    keys = frozenset(lookup.key for lookup in query.lookups)
    return replace(
        query,
        sql=query.lean_sql,
        columns=lean_columns(query),
        closed_text_columns=query.closed_text_columns | keys,
        lean_sql=None,
        lookups=(),
    )


def _map_sql(lookup: NameLookup, *cells: str) -> sql.Composed:
    """``SELECT <cells> FROM <table> WHERE organization_id = %(org)s`` (constants only)."""
    return sql.SQL("SELECT {cells} FROM {table} WHERE organization_id = %(org)s").format(
        cells=sql.SQL(", ").join(sql.SQL(cell) for cell in cells),
        table=sql.Identifier(lookup.table),
    )


async def _fetch(
    conn: psycopg.AsyncConnection[object], query: sql.Composed, org: str
) -> list[tuple[str | None, ...]]:
    async with conn.cursor() as cur:
        await cur.execute(query, {"org": org})
        return await cur.fetchall()  # type: ignore[return-value]


async def csv_name_splice(conn: psycopg.AsyncConnection[object], query: ExportQuery) -> RowSplice:
    """The function that writes the names into a lean CSV row (``COPY`` bytes, one row)."""
    encoding = conn.info.encoding
    org = str(query.params["org"])
    columns = lean_columns(query)
    positions = []
    for lookup in query.lookups:
        rows = await _fetch(
            conn,
            _map_sql(lookup, "id", formula_safe("id"), formula_safe(lookup.column)),
            org,
        )
        cells = {
            pg_csv_cell(key, encoding): pg_csv_cell(guarded_id, encoding)
            + b","
            + pg_csv_cell(guarded_name, encoding)
            for key, guarded_id, guarded_name in rows
        }
        if lookup.optional:
            cells[b""] = b","  # a NULL id: empty id and name cells
        positions.append((columns.index(lookup.key), cells))
    return _csv_splice(positions, len(columns))


def _csv_splice(positions: Sequence[tuple[int, dict[bytes, bytes]]], width: int) -> RowSplice:
    """Replace the id cell at each position by its ``id,name`` cells (``width`` cells)."""
    last = max(at for at, _ in positions)
    if last == width - 1:  # an id in the last cell: split it from the row's LF first
        inner = _csv_splice(positions, width + 1)
        return lambda row: inner(row[:-1] + b",\n")[:-2] + b"\n"

    def splice(row: bytes) -> bytes:
        # Without a quote no cell is quoted, so no cell holds a comma: split is exact.
        cells = _quoted_cells(row) if 0x22 in row else row.split(b",", last + 1)
        for at, names in positions:
            cells[at] = names[cells[at]]
        return b",".join(cells)

    if len(positions) != 2:
        return splice
    # Two ids (a user and a project): the same, without the loop (it runs per row).
    (first, first_names), (second, second_names) = positions

    def splice_two(row: bytes) -> bytes:
        if 0x22 in row:
            return splice(row)
        cells = row.split(b",", last + 1)
        cells[first] = first_names[cells[first]]
        cells[second] = second_names[cells[second]]
        return b",".join(cells)

    return splice_two


def _quoted_cells(body: bytes, quote: int = 0x22, delimiter: int = 0x2C) -> list[bytes]:
    """The cells of a CSV row that has quoted cells, each as written (quotes kept)."""
    cells = []
    start = 0
    quoted = False
    for i, byte in enumerate(body):
        if byte == quote:  # opens or closes a quoted cell (a doubled quote toggles twice)
            quoted = not quoted
        elif byte == delimiter and not quoted:
            cells.append(body[start:i])
            start = i + 1
    cells.append(body[start:])
    return cells


async def json_name_splice(conn: psycopg.AsyncConnection[object], query: ExportQuery) -> RowSplice:
    """The function that writes the names into a lean JSON row of json_rows.py split
    around the looked-up ids (one COPY row: ``segment \x02 id \x02 segment ...``)."""
    encoding = conn.info.encoding
    org = str(query.params["org"])
    columns = lean_columns(query)
    # the ids split the row in the order of their columns
    ordered = sorted(query.lookups, key=lambda lookup: columns.index(lookup.key))
    positions = []
    for at, lookup in enumerate(ordered):
        rows = await _fetch(
            conn,
            _map_sql(lookup, "id", "to_json(id)::text", f"to_json({lookup.column})::text"),
            org,
        )
        name_key = b',"' + lookup.name.encode() + b'":'
        cells = {
            pg_csv_cell(key, encoding, JSON_QUOTE, JSON_DELIMITER): str(key_json).encode(encoding)
            + name_key
            + (b"null" if name is None else name.encode(encoding))
            for key, key_json, name in rows
        }
        if lookup.optional:
            cells[b""] = b"null" + name_key + b"null"  # a NULL id
        positions.append((2 * at + 1, cells))  # segment, id, segment, id, ..., segment
    return _json_splice(positions)


def _json_splice(positions: Sequence[tuple[int, dict[bytes, bytes]]]) -> RowSplice:
    quote, delimiter = ord(JSON_QUOTE), ord(JSON_DELIMITER)
    separator = JSON_DELIMITER.encode()

    def splice(row: bytes) -> bytes:
        # Segments never hold the quote byte: only a quoted id cell does.
        parts = _quoted_cells(row, quote, delimiter) if quote in row else row.split(separator)
        for at, names in positions:
            parts[at] = names[parts[at]]
        return b"".join(parts)

    return splice
