"""Test fixtures: a real PostgreSQL built by the migrations and the API over real HTTP.

By default the embedded PostgreSQL (under ``.data/test-pg``) is used; set
``PIVOTAL_TEST_DATABASE_URL`` to a PostgreSQL 15+ admin URL to use that server instead.
Each test session creates (and drops) its own database, so runs never share state;
each test creates its own organizations, so tests never see each other's rows.

Under pytest-xdist (``-n 4``) every worker process is such a session: the workers share
one embedded server (started under a file lock) and each creates its own database.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from filelock import FileLock
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from pivotal_reporting import schema
from pivotal_reporting.app import create_app
from pivotal_reporting.config import Settings
from pivotal_reporting.db import sqlalchemy_url, with_database
from pivotal_reporting.embedded import start_embedded
from tests.factories import Tenant, create_tenant
from tests.server import QUIET_ROLLUP_CRON, TEST_JWT_SECRET, TEST_METRICS_TOKEN, ServerThread

pytest_plugins = ["tests.s3_server"]  # the s3_server fixture (a real S3-protocol server)

REPO = Path(__file__).resolve().parent.parent
TEST_PGDATA = REPO / ".data" / "test-pg"


def _file_lock(name: str) -> FileLock:
    """A lock shared by every pytest process of this checkout (xdist workers)."""
    TEST_PGDATA.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(TEST_PGDATA.parent / f"{name}.lock", timeout=300)


@pytest.fixture(scope="session")
def admin_url() -> str:
    """A libpq URL with rights to create databases."""
    configured = os.environ.get("PIVOTAL_TEST_DATABASE_URL")
    if configured:
        return configured
    # xdist workers start at once: one of them starts (or initdb's) the server, the others
    # wait and then join it (the server stops when the last process using it exits).
    with _file_lock("test-pg"):
        return start_embedded(TEST_PGDATA, database="postgres")


@pytest.fixture(scope="session")
def database_url(admin_url: str) -> Iterator[str]:
    """A fresh database for this session, migrated to head by Alembic."""
    name = f"pivotal_test_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(admin_url, name)
    # The first migration on a new server creates the cluster-wide tenant role; xdist
    # workers migrating at once would race to create it, so they migrate one at a time.
    with _file_lock("test-migrations"):
        schema.upgrade(url)
    yield url
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def owner_engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(sqlalchemy_url(database_url), pool_size=5)
    yield engine
    engine.dispose()


@pytest.fixture
def db(owner_engine: Engine) -> Iterator[Session]:
    """An owner session for factories: each factory commits, so the API sees its rows."""
    with Session(owner_engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pivotal-data")


@pytest.fixture(scope="session")
def settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        env="dev",
        database_url=database_url,
        data_dir=data_dir,
        jwt_secret=TEST_JWT_SECRET,
        metrics_token=TEST_METRICS_TOKEN,
        worker_in_process=True,
        rollup_cron=QUIET_ROLLUP_CRON,
        # Every anonymous request of the suite shares 127.0.0.1's budget; the rate-limit
        # tests start their own servers with small limits.
        rate_limit_per_minute=1_000_000,
    )


@pytest.fixture(scope="session")
def api_server(settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(create_app(settings)) as server:
        yield server


@pytest.fixture
def start_server(settings: Settings) -> Iterator[Callable[..., ServerThread]]:
    """Start an API server whose settings differ from the session's by ``overrides``."""
    with ExitStack() as stack:

        def start(**overrides: Any) -> ServerThread:
            custom = settings.model_copy(update=overrides)
            return stack.enter_context(ServerThread(create_app(custom)))

        yield start


@pytest.fixture
def client(api_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_server.base_url, timeout=60) as http:
        yield http


@pytest.fixture
def tenant(db: Session, settings: Settings) -> Tenant:
    """A fresh organization with a viewer, an exporter, an admin and a user with no role."""
    return create_tenant(db, settings)


@pytest.fixture
def other_tenant(db: Session, settings: Settings) -> Tenant:
    return create_tenant(db, settings)
