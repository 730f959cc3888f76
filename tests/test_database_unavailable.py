"""Which database errors mean "unavailable, retry" (503) and which are bugs (500)."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy.exc
from psycopg import errors as pg_errors

from pivotal_reporting.errors import ServiceUnavailable, database_unavailable


def _wrapped(orig: Exception, *, invalidated: bool = False) -> sqlalchemy.exc.DBAPIError:
    return sqlalchemy.exc.DBAPIError.instance(
        "SELECT 1", None, orig, psycopg.Error, connection_invalidated=invalidated
    )


@pytest.mark.parametrize(
    "error",
    [
        psycopg.OperationalError("connection refused"),
        pg_errors.AdminShutdown("terminating connection due to administrator command"),
        pg_errors.CannotConnectNow("the database system is starting up"),
        psycopg.InterfaceError("the connection is closed"),
        sqlalchemy.exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_outages_are_unavailable(error: Exception) -> None:
    assert database_unavailable(error)
    if not isinstance(error, sqlalchemy.exc.TimeoutError):
        assert database_unavailable(_wrapped(error))


@pytest.mark.parametrize(
    "error",
    [
        pg_errors.QueryCanceled("canceling statement due to statement timeout"),
        pg_errors.UndefinedTable('relation "nope" does not exist'),
        pg_errors.UniqueViolation("duplicate key"),
        ValueError("not a database error"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_statement_errors_are_not(error: Exception) -> None:
    assert not database_unavailable(error)
    assert not database_unavailable(_wrapped(error))


def test_an_invalidated_connection_is_unavailable() -> None:
    assert database_unavailable(_wrapped(pg_errors.UndefinedTable("x"), invalidated=True))


def test_service_unavailable_says_when_to_retry() -> None:
    error = ServiceUnavailable()
    assert error.status_code == 503
    assert int(error.headers["Retry-After"]) > 0
