"""Input types shared by every endpoint: instants, ids, free text and bounded integers.

Each type refuses at the schema what the database or the worker could not handle, so a
request either gets a clear 422 or is something the server can answer (and an export job
something the worker can run):

- ``Instant``: ISO-8601 date-time **with** an offset (``2024-01-01T00:00:00Z``,
  ``2024-01-01T00:00:00+01:00``), between ``MIN_INSTANT`` and ``MAX_INSTANT``. A bare
  number is never a Unix time; a naive date-time has no meaning for a finance window.
- ``Id``: 1-200 characters, no control characters (NUL included) and no lone surrogates:
  PostgreSQL text cannot hold NUL, and UTF-8 cannot encode a surrogate.
- ``FilterText``: the same rule for a free-text filter (an audit action, a cursor).
- ``Offset``: a row offset, ``0 <= offset <= MAX_OFFSET`` (a bigint would overflow).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, TypeGuard

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, WithJsonSchema

MIN_INSTANT = datetime(1900, 1, 1, tzinfo=UTC)
MAX_INSTANT = datetime(2200, 1, 1, tzinfo=UTC)
MAX_ID_LENGTH = 200
MAX_OFFSET = 1_000_000
INSTANT_HINT = "an ISO-8601 date-time with an offset, e.g. 2024-01-01T00:00:00Z"

_INSTANT_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})$"
)
_INSTANT = re.compile(_INSTANT_PATTERN)
# No C0 control character (NUL, tab, CR, LF ...) and no DEL; ECMA-262 and Rust syntax alike.
_PRINTABLE_PATTERN = r"^[^\u0000-\u001f\u007f]+$"
_PRINTABLE = re.compile(_PRINTABLE_PATTERN)
_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_instant(value: Any) -> datetime:
    """An aware datetime from ISO-8601 text with an offset, inside the supported range.

    Raises ``ValueError`` (a 422 through pydantic) for anything else: a number, a naive
    date-time, an impossible date, or an instant outside ``[MIN_INSTANT, MAX_INSTANT]``.
    """
    if isinstance(value, datetime):
        instant = value
    elif isinstance(value, str) and _INSTANT.match(value):
        try:
            instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"not a valid date-time; use {INSTANT_HINT}") from None
    elif isinstance(value, str) and _INSTANT.match(value.replace(" ", "+")):
        # "+01:00" sent unencoded in a query string arrives as " 01:00".
        raise ValueError(
            f"the offset's '+' arrived as a space: write it as %2B; use {INSTANT_HINT}"
        )
    else:
        raise ValueError(f"use {INSTANT_HINT}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"the offset is missing; use {INSTANT_HINT}")
    try:
        inside = MIN_INSTANT <= instant <= MAX_INSTANT
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        inside = False
    if not inside:
        raise ValueError(
            f"must be between {MIN_INSTANT:%Y-%m-%dT%H:%M:%SZ} and {MAX_INSTANT:%Y-%m-%dT%H:%M:%SZ}"
        )
    return instant


def check_text(value: str) -> str:
    """``value`` unless it holds a control character or a lone surrogate."""
    if not _PRINTABLE.match(value):
        raise ValueError("must not contain control characters")
    if _SURROGATE.search(value):
        raise ValueError("must be valid Unicode text (a lone surrogate is not)")
    return value


def is_valid_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a usable id (e.g. a token claim): see ``Id``."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID_LENGTH:
        return False
    try:
        check_text(value)
    except ValueError:
        return False
    return True


Instant = Annotated[
    AwareDatetime,
    BeforeValidator(parse_instant),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": _INSTANT_PATTERN}),
]
Id = Annotated[
    str,
    Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=_PRINTABLE_PATTERN),
    AfterValidator(check_text),
]


FilterText = Annotated[
    str,
    Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=_PRINTABLE_PATTERN),
    AfterValidator(check_text),
]


Offset = Annotated[int, Field(ge=0, le=MAX_OFFSET)]
