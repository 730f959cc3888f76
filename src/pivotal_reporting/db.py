"""Engine, sessions and the tenant-scoped transaction.

``Database.tenant_session`` (an ORM session) and ``Database.tenant_connection`` (a raw
psycopg connection, for ``COPY``) are the only ways request handlers and tasks read
business tables: both switch to the non-owner role ``pivotal_tenant`` (so row-level security
applies even when we connect as a superuser) and sets ``app.organization_id`` for the
transaction only, so nothing leaks through the pool to the next request.

Snapshot reads (a summary's session, an export's connection) may go to the read replica
(``replica=True``, ``replica.py``) and know the instant their data is from
(:func:`read_snapshot_of`, :func:`read_snapshot_of_connection`).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import sqlalchemy.exc
from psycopg import sql
from psycopg.rows import dict_row
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from pivotal_reporting import metrics
from pivotal_reporting.config import Settings
from pivotal_reporting.embedded import start_embedded
from pivotal_reporting.replica import (
    CONNECT_TIMEOUT_SECONDS,
    DATA_AS_OF_SQL,
    EXACT_SNAPSHOT_ATTEMPTS,
    REPLAY_STATE_SQL,
    ReadSnapshot,
    ReplicaPolicy,
    ReplicaUnavailable,
    refusal,
)
from pivotal_reporting.rls import TENANT_ROLE

log = logging.getLogger(__name__)

# One round trip: set_config('role', ..., true) is SET LOCAL ROLE.
_ENTER_TENANT = text(
    f"SELECT set_config('role', '{TENANT_ROLE}', true), "
    "set_config('app.organization_id', :org, true)"
)
_ENTER_TENANT_LITERAL = (
    "SELECT set_config('role', {role}, true), set_config('app.organization_id', {org}, true)"
)
# The same, as the statement that takes a REPEATABLE READ snapshot: it also says what
# that snapshot is (and keeps it in the transaction, for read_snapshot_of_connection).
_ENTER_TENANT_SNAPSHOT_SQL = (
    "SELECT set_config('role', {role}, true), "  # noqa: S608 -- reviewed: constants only, values are literals or bound
    "set_config('app.organization_id', {org}, true), "
    "set_config('app.read_pool', {pool}, true), "
    "set_config('app.data_as_of', coalesce(to_json(s.data_as_of) #>> '{{}}', ''), true), "
    "s.data_as_of, s.in_recovery "
    f"FROM (SELECT {DATA_AS_OF_SQL} AS data_as_of, pg_is_in_recovery() AS in_recovery) AS s"
)
_ENTER_TENANT_SNAPSHOT = text(
    _ENTER_TENANT_SNAPSHOT_SQL.format(role=f"'{TENANT_ROLE}'", org=":org", pool=":pool")
)
_READ_SNAPSHOT_SETTINGS = (
    "SELECT current_setting('app.data_as_of', true), current_setting('app.read_pool', true), "
    "pg_is_in_recovery()"
)
_READ_SNAPSHOT_KEY = "pivotal_read_snapshot"
_SNAPSHOT_ID = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9A-F]+)?$")
WARN_EVERY_SECONDS = 60.0
# Second transactions in a snapshot per process (Database.snapshot_sibling).
SIBLING_POOL_SIZE = 4
_SET_MAINTENANCE = text("SELECT set_config('app.maintenance', 'on', true)")


def resolve_database_url(settings: Settings) -> str:
    """The libpq URL to use: the configured one, else the embedded server's."""
    if settings.database_url:
        return settings.database_url
    return start_embedded(settings.data_dir / "pg")


def with_database(libpq_url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(libpq_url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def sqlalchemy_url(libpq_url: str) -> str:
    """``postgresql://...`` → ``postgresql+psycopg://...`` (psycopg 3 driver)."""
    scheme, sep, rest = libpq_url.partition("://")
    if not sep or scheme not in {"postgres", "postgresql", "postgresql+psycopg"}:
        raise ValueError("database URL must start with postgresql://")
    return f"postgresql+psycopg://{rest}"


def read_snapshot_of(session: AsyncSession) -> ReadSnapshot:
    """What the snapshot of ``tenant_session(..., snapshot=True)`` is (its instant, server)."""
    read = session.info.get(_READ_SNAPSHOT_KEY)
    if not isinstance(read, ReadSnapshot):
        raise ValueError("not a snapshot session")
    return read


async def read_snapshot_of_connection(conn: psycopg.AsyncConnection[Any]) -> ReadSnapshot:
    """What the snapshot of a ``tenant_connection`` (one that took it) is."""
    async with conn.cursor() as cur:
        await cur.execute(_READ_SNAPSHOT_SETTINGS)
        row = await cur.fetchone()
    if row is None or not row[0]:
        raise ValueError("not a snapshot connection")
    return ReadSnapshot(datetime.fromisoformat(row[0]), row[1] == "replica", bool(row[2]))


def _unreachable(exc: BaseException) -> bool:
    """The server is out of reach (refused, dropped, pool timeout), not a bad statement."""
    if isinstance(exc, sqlalchemy.exc.TimeoutError | OSError):
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig or exc
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


def _engine(url: str, pool_size: int, **connect_args: Any) -> AsyncEngine:
    return create_async_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args=connect_args,
    )


def _sibling_engine(url: str) -> AsyncEngine:
    """The pool of ``snapshot_sibling``: a few connections, none ever waited for."""
    return create_async_engine(
        sqlalchemy_url(url),
        pool_size=SIBLING_POOL_SIZE,
        max_overflow=0,
        pool_timeout=0,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


@dataclass
class Replica:
    """The read replica's pool and its policy (``replica.py``)."""

    engine: AsyncEngine
    policy: ReplicaPolicy
    _warned: dict[str, float] = field(default_factory=dict)

    def warn(self, exc: ReplicaUnavailable) -> None:
        """Log why the replica was passed over: once a minute per reason, not per read."""
        now = time.monotonic()
        if now - self._warned.get(exc.reason, -WARN_EVERY_SECONDS) >= WARN_EVERY_SECONDS:
            self._warned[exc.reason] = now
            then = "reading the primary" if self.policy.fallback == "primary" else "refusing"
            log.warning("%s; %s (logged once a minute)", exc, then)


@dataclass(frozen=True)
class CommandResult:
    """One command of a transaction sent whole: its tag word, row count and rows."""

    tag: str
    rowcount: int
    rows: list[dict[str, Any]]


@dataclass
class Database:
    """The application's connection pool and its two kinds of transaction."""

    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    replica: Replica | None = None
    siblings: AsyncEngine | None = None

    @classmethod
    def connect(
        cls, url: str, *, pool_size: int = 10, replica: ReplicaPolicy | None = None
    ) -> Database:
        """Pools for ``url`` and, with ``replica``, for the read replica beside it."""
        engine = _engine(url, pool_size)
        reads = None
        if replica is not None:
            timeout = CONNECT_TIMEOUT_SECONDS
            reads = Replica(_engine(replica.url, pool_size, connect_timeout=timeout), replica)
        return cls(
            url=url,
            engine=engine,
            sessions=async_sessionmaker(engine, expire_on_commit=False),
            replica=reads,
            siblings=_sibling_engine(url),
        )

    @asynccontextmanager
    async def tenant_session(
        self,
        organization_id: str,
        *,
        snapshot: bool = False,
        replica: bool = False,
        snapshot_id: str | None = None,
    ) -> AsyncIterator[AsyncSession]:
        """One transaction scoped to ``organization_id``; commits on success.

        ``snapshot``: a read-only REPEATABLE READ transaction, so that all its statements
        see one state of the data (a summary's several queries must add up); what that
        state is: :func:`read_snapshot_of`. ``replica`` (a snapshot only): read it on the
        read replica when one is configured and usable (else the fallback policy).
        ``snapshot_id`` (with ``snapshot``): import that exported snapshot instead, as
        ``tenant_connection`` does (``replica``: it was exported on the replica's pool).
        """
        if not organization_id:
            raise ValueError("organization_id is required for a tenant session")
        if replica and not snapshot:
            raise ValueError("only a read-only snapshot can be read on the replica")
        if snapshot_id is not None:
            if not snapshot:
                raise ValueError("a snapshot id needs snapshot=True")
            engine = self.replica.engine if replica and self.replica else self.engine
            async with engine.connect() as conn:
                await _import_snapshot(conn, organization_id, snapshot_id)
                async with AsyncSession(bind=conn, expire_on_commit=False) as session:
                    yield session
            return
        if snapshot:
            async with (
                self._snapshot(organization_id, replica=replica) as (conn, read),
                AsyncSession(bind=conn, expire_on_commit=False) as session,
            ):
                session.info[_READ_SNAPSHOT_KEY] = read
                yield session
            return
        async with self.sessions() as session, session.begin():
            await session.execute(_ENTER_TENANT, {"org": organization_id})
            yield session

    @asynccontextmanager
    async def tenant_connection(
        self, organization_id: str, snapshot_id: str | None = None, *, replica: bool = False
    ) -> AsyncIterator[psycopg.AsyncConnection[object]]:
        """A read-only REPEATABLE READ transaction scoped to ``organization_id``, on the raw
        psycopg connection (for ``COPY``); it ends (rolled back: it wrote nothing) on exit.

        Without ``snapshot_id`` it takes a snapshot (:func:`read_snapshot_of_connection`
        says what it is), on the read replica if ``replica`` (as ``tenant_session``).
        With ``snapshot_id`` (from ``pg_export_snapshot()`` in another transaction) it
        sees exactly the same data as that transaction, which must have been opened on
        the same server: ``replica`` then says whether that was the replica's pool.
        """
        if not organization_id:
            raise ValueError("organization_id is required for a tenant connection")
        async with AsyncExitStack() as stack:
            if snapshot_id is None:
                conn, _ = await stack.enter_async_context(
                    self._snapshot(organization_id, replica=replica)
                )
            else:
                engine = self.replica.engine if replica and self.replica else self.engine
                conn = await stack.enter_async_context(engine.connect())
                await _import_snapshot(conn, organization_id, snapshot_id)
            raw = await conn.get_raw_connection()
            driver: psycopg.AsyncConnection[object] = raw.driver_connection  # type: ignore[assignment]
            yield driver

    @asynccontextmanager
    async def _snapshot(
        self, organization_id: str, *, replica: bool
    ) -> AsyncIterator[tuple[AsyncConnection, ReadSnapshot]]:
        """A tenant snapshot transaction on the replica (if asked, configured and usable)
        or on the primary; ``ReplicaUnavailable`` if the replica cannot answer and the
        policy forbids the primary."""
        async with AsyncExitStack() as stack:
            opened = None
            if replica and self.replica is not None:
                try:
                    opened = await stack.enter_async_context(
                        _replica_snapshot(self.replica, organization_id)
                    )
                except ReplicaUnavailable as exc:
                    metrics.READ_REPLICA_UNUSABLE.labels(exc.reason).inc()
                    self.replica.warn(exc)
                    if self.replica.policy.fallback == "unavailable":
                        raise
            if opened is None:
                opened = await stack.enter_async_context(
                    _exact_snapshot(self.engine, organization_id, pool="primary")
                )
            metrics.READ_SNAPSHOTS.labels(opened[1].server).inc()
            yield opened

    @asynccontextmanager
    async def snapshot_sibling(
        self, organization_id: str, snapshot_id: str, setup: str = ""
    ) -> AsyncIterator[AsyncSession | None]:
        """A second tenant transaction on the primary that sees exactly the snapshot
        ``snapshot_id`` exported there (``setup`` run first), so that two queries of
        one summary run at once; ``None`` at once when none of its own few connections
        is free, or one cannot be opened or enter the snapshot (the server is full, a
        connection broke): the caller then runs its query itself. Its pool is not the
        main pool: a transaction holding a main connection never waits for another (a
        wait there could, under load, be everyone's)."""
        if self.siblings is None:
            yield None
            return
        conn = self.siblings.connect()
        try:
            await conn.start()
            await _import_snapshot(conn, organization_id, snapshot_id)
            if setup:
                await conn.exec_driver_sql(setup)
        except (sqlalchemy.exc.TimeoutError, sqlalchemy.exc.DBAPIError) as exc:
            log.warning("no second connection for a summary (%s); one connection it is", exc)
            with contextlib.suppress(Exception):  # a broken connection is discarded
                await conn.close()
            yield None
            return
        try:
            async with AsyncSession(bind=conn, expire_on_commit=False) as session:
                yield session
        finally:
            await conn.close()

    async def send_transaction(self, statements: sql.Composed) -> list[CommandResult]:
        """Run a whole transaction (``BEGIN; ...; COMMIT;``, every value a literal) on the
        primary, sent in one message: its locks are held only while the server runs it,
        never while this process waits for its turn; one round trip instead of one per
        statement. What each command answered, in order.
        """
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
            await driver.set_autocommit(True)
            try:
                return await _run_whole(driver, statements)
            finally:
                try:
                    await driver.set_autocommit(False)
                except BaseException:
                    # Never back to the pool in autocommit mode: there each statement
                    # would be its own transaction, and a tenant scope set for the
                    # transaction would not hold for the next statement.
                    await conn.invalidate()
                    raise

    async def tenant_read(
        self, organization_id: str, query: str, **values: Any
    ) -> list[dict[str, Any]]:
        """The rows of one read-only ``query`` (``{name}`` placeholders, filled with
        ``values`` as literals) in a transaction scoped to ``organization_id``, sent in
        one message (``send_transaction``)."""
        enter = sql.SQL(_ENTER_TENANT_LITERAL).format(
            role=sql.Literal(TENANT_ROLE), org=sql.Literal(_required(organization_id))
        )
        results = await self.send_transaction(_reading("BEGIN READ ONLY", enter, query, values))
        return results[2].rows

    async def snapshot_read(
        self, organization_id: str, query: str, **values: Any
    ) -> tuple[ReadSnapshot, list[dict[str, Any]]]:
        """``tenant_read`` in a read-only REPEATABLE READ snapshot on the primary, taken
        as ``tenant_session(snapshot=True)`` takes it: what that snapshot is, and the rows."""
        enter = sql.SQL(_ENTER_TENANT_SNAPSHOT_SQL).format(
            role=sql.Literal(TENANT_ROLE),
            org=sql.Literal(_required(organization_id)),
            pool=sql.Literal("primary"),
        )
        begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        results = await self.send_transaction(_reading(begin, enter, query, values))
        taken = results[1].rows[0]
        snapshot = ReadSnapshot(taken["data_as_of"], False, taken["in_recovery"])
        metrics.READ_SNAPSHOTS.labels(snapshot.server).inc()
        return snapshot, results[2].rows

    @asynccontextmanager
    async def system_session(self) -> AsyncIterator[AsyncSession]:
        """An owner transaction for cross-tenant maintenance (CLI, sweeper).

        Never used to answer a request: it bypasses row-level security.
        """
        async with self.sessions() as session, session.begin():
            await session.execute(_SET_MAINTENANCE)
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.siblings is not None:
            await self.siblings.dispose()
        if self.replica is not None:
            await self.replica.engine.dispose()


async def _run_whole(
    driver: psycopg.AsyncConnection[Any], statements: sql.Composed
) -> list[CommandResult]:
    """``send_transaction``'s message on an autocommit connection; a failed transaction
    is rolled back (its remaining statements were skipped)."""
    try:
        async with driver.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(statements)
            results = []
            while True:
                rows = await cursor.fetchall() if cursor.description else []
                tag = (cursor.statusmessage or "").split(" ")[0]
                results.append(CommandResult(tag, cursor.rowcount, rows))
                if not cursor.nextset():
                    return results
    except BaseException:
        if driver.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
            with contextlib.suppress(psycopg.Error):  # a broken connection is dropped
                await driver.execute("ROLLBACK")
        raise


def _required(organization_id: str) -> str:
    if not organization_id:
        raise ValueError("organization_id is required for a tenant read")
    return organization_id


def _reading(begin: str, enter: sql.Composed, query: str, values: dict[str, Any]) -> sql.Composed:
    """``begin``; ``enter``; ``query`` with ``values`` as literals; COMMIT."""
    filled = sql.SQL(query).format(**{k: sql.Literal(v) for k, v in values.items()})
    return sql.SQL(";\n").join([sql.SQL(begin), enter, filled, sql.SQL("COMMIT")])


@asynccontextmanager
async def _replica_snapshot(
    replica: Replica, organization_id: str
) -> AsyncIterator[tuple[AsyncConnection, ReadSnapshot]]:
    """A snapshot on the replica, refused (``ReplicaUnavailable``) if it is out of reach,
    not ready or lags beyond the policy."""
    async with AsyncExitStack() as stack:
        try:
            conn = await stack.enter_async_context(replica.engine.connect())
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            state = dict((await conn.exec_driver_sql(REPLAY_STATE_SQL)).mappings().one())
            await conn.commit()  # SQLAlchemy's autobegin; nothing to commit
            refused = refusal(state, replica.policy.max_lag_seconds)
            if refused is not None:
                raise refused
            opened = await stack.enter_async_context(
                _exact_snapshot(
                    conn, organization_id, pool="replica", replayed_at=state["replayed_at"]
                )
            )
        except ReplicaUnavailable:
            raise
        except Exception as exc:
            if not _unreachable(exc):
                raise
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ReplicaUnavailable("unreachable", first_line or type(exc).__name__) from exc
        yield opened


@asynccontextmanager
async def _exact_snapshot(
    bind: AsyncEngine | AsyncConnection,
    organization_id: str,
    *,
    pool: str,
    replayed_at: datetime | None = None,
) -> AsyncIterator[tuple[AsyncConnection, ReadSnapshot]]:
    """A read-only REPEATABLE READ tenant transaction and the instant of its snapshot.

    On a standby, ``replayed_at`` (the replay timestamp read just before, if given) must
    equal the one read by the statement that takes the snapshot; if replay moved in
    between, the snapshot may hold a commit later than either, so it is taken again.
    """
    async with AsyncExitStack() as stack:
        conn = bind
        if isinstance(bind, AsyncEngine):
            conn = await stack.enter_async_context(bind.connect())
        assert isinstance(conn, AsyncConnection)
        await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        for _ in range(EXACT_SNAPSHOT_ATTEMPTS):
            transaction = await conn.begin()
            row = (
                (await conn.execute(_ENTER_TENANT_SNAPSHOT, {"org": organization_id, "pool": pool}))
                .mappings()
                .one()
            )
            if replayed_at is None or not row["in_recovery"] or row["data_as_of"] == replayed_at:
                break
            await transaction.rollback()
            replayed_at = row["data_as_of"]
        else:
            raise ReplicaUnavailable("replaying", "replay moved during every snapshot attempt")
        try:
            yield conn, ReadSnapshot(row["data_as_of"], pool == "replica", row["in_recovery"])
        finally:
            if transaction.is_active:
                await transaction.rollback()  # read only: nothing to commit


async def _import_snapshot(conn: AsyncConnection, organization_id: str, snapshot_id: str) -> None:
    """Begin a tenant transaction that sees exactly the exported snapshot ``snapshot_id``."""
    if not _SNAPSHOT_ID.match(snapshot_id):
        raise ValueError("invalid snapshot id")
    await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    await conn.begin()
    # Must be the transaction's first statement.
    statement = sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot_id))
    await conn.exec_driver_sql(statement.as_string(None))
    await conn.execute(_ENTER_TENANT, {"org": organization_id})
