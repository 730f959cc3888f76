"""The read replica: whether it may answer, and the instant a snapshot's data is from.

``PIVOTAL_READ_DATABASE_URL`` names a physical streaming replica (a hot standby built
with ``pg_basebackup -R``). Summaries and export ``COPY`` read there; everything that
writes (jobs, audit events, the queue) stays on the primary. ``db.py`` opens the
snapshots; this module holds what it decides with.

**The instant.** A read answers with ``dataAsOf``: on a replica, the primary's commit
timestamp of the last transaction the replica had replayed when the snapshot was taken
(``pg_last_xact_replay_timestamp()``); on the primary, the start of the statement that
took the snapshot (``statement_timestamp()``). Replay runs beside our transaction, so
the replay timestamp is read twice, just before the snapshot (outside any transaction)
and in the statement that takes it; the snapshot is kept only when both agree, so no
transaction replayed in between can be in the figures without being in ``dataAsOf``.

**Usable.** A replica answers only when it is a reachable hot standby that has replayed
at least one transaction since it started and whose lag is within
``PIVOTAL_READ_MAX_LAG_SECONDS``. The lag is 0 while the WAL receiver streams and every
received record is replayed (an idle primary sends nothing, so the last commit may be
old and the replica still current); otherwise it is the time since the last replayed
commit. Otherwise ``PIVOTAL_READ_FALLBACK`` decides: read the primary, or refuse
(:class:`ReplicaUnavailable`: 503 for a summary, a retried export).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pivotal_reporting.config import Settings

Fallback = Literal["primary", "unavailable"]
# Attempts at a snapshot whose replay timestamp did not move while it was taken; each
# retry starts from the timestamp the last one saw, so only a replica replaying
# commits faster than our round trips misses all of them.
EXACT_SNAPSHOT_ATTEMPTS = 5
CONNECT_TIMEOUT_SECONDS = 3  # an unreachable replica costs at most this per read

# Outside a transaction (autocommit): replay state and lag, in seconds. The WAL
# receiver's status needs pg_read_all_stats (or pg_monitor); without it the status reads
# NULL and the lag falls back to the time since the last replayed commit.
REPLAY_STATE_SQL = """
SELECT pg_is_in_recovery() AS in_recovery,
       pg_last_xact_replay_timestamp() AS replayed_at,
       CASE
         WHEN NOT pg_is_in_recovery() THEN 0
         WHEN pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn()
              AND EXISTS (SELECT FROM pg_stat_wal_receiver WHERE status = 'streaming')
           THEN 0
         ELSE extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())
       END::float8 AS lag_seconds
"""

# The instant of the snapshot that the statement evaluating it has just taken.
DATA_AS_OF_SQL = (
    "CASE WHEN pg_is_in_recovery() THEN pg_last_xact_replay_timestamp() "
    "ELSE statement_timestamp() END"
)


class ReplicaUnavailable(ConnectionError):
    """The replica cannot answer now (down, lagging, not ready); ``reason`` is a label.

    A ``ConnectionError``: a queued export that meets it is retried with backoff.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"read replica {reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class ReplicaPolicy:
    """Where reads go when the replica cannot answer, and how far behind it may be."""

    url: str
    max_lag_seconds: float
    fallback: Fallback


def replica_policy(settings: Settings) -> ReplicaPolicy | None:
    """The configured replica, or ``None`` (every read on the primary)."""
    if settings.read_database_url is None:
        return None
    return ReplicaPolicy(
        url=settings.read_database_url,
        max_lag_seconds=settings.read_max_lag_seconds,
        fallback=settings.read_fallback,
    )


@dataclass(frozen=True)
class ReadSnapshot:
    """What a snapshot read knows about itself.

    ``data_as_of``: the instant the data is from (aware). ``on_replica``: opened on the
    replica's pool (a snapshot exported there must be imported there).
    ``in_recovery``: ``pg_is_in_recovery()`` of the very connection, i.e. a standby.
    """

    data_as_of: datetime
    on_replica: bool
    in_recovery: bool

    @property
    def server(self) -> str:
        """``replica`` or ``primary``: the metrics label of the server that answered."""
        return "replica" if self.in_recovery else "primary"


@dataclass(frozen=True)
class ExportedSnapshot:
    """A snapshot exported (``pg_export_snapshot()``) for a second connection to share."""

    snapshot_id: str
    read: ReadSnapshot


def refusal(state: Mapping[str, Any], max_lag_seconds: float) -> ReplicaUnavailable | None:
    """Why a replica in ``state`` (a ``REPLAY_STATE_SQL`` row) must not answer, if it must not."""
    if not state["in_recovery"]:
        return None  # promoted (or the primary itself): current by definition
    if state["replayed_at"] is None:
        return ReplicaUnavailable(
            "not_ready", "no transaction replayed since it started; its data has no instant"
        )
    lag = float(state["lag_seconds"])
    if lag > max_lag_seconds:
        return ReplicaUnavailable("lagging", f"{lag:.1f} s behind (limit {max_lag_seconds:g} s)")
    return None
