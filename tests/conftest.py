"""Test fixtures: a real PostgreSQL built by the migrations and the API over real HTTP.

By default the embedded PostgreSQL (under ``.data/test-pg``) is used; set
``PIVOTAL_TEST_DATABASE_URL`` to a PostgreSQL 15+ admin URL to use that server instead.
Each test session creates (and drops) its own database, so runs never share state;
each test creates its own organizations, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

# The tests refresh report rollups themselves; the test server's worker refreshing every
# minute would race their checks, so its periodic refresh runs on 1 January only.
os.environ.setdefault("PIVOTAL_ROLLUP_CRON", "0 0 1 1 *")

import httpx
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from pivotal_reporting import schema
from pivotal_reporting.app import create_app
from pivotal_reporting.config import Settings
from pivotal_reporting.db import sqlalchemy_url, with_database
from pivotal_reporting.embedded import start_embedded
from tests.factories import Tenant, create_tenant

pytest_plugins = ["tests.s3_server"]  # the s3_server fixture (a real S3-protocol server)

REPO = Path(__file__).resolve().parent.parent
TEST_JWT_SECRET = "test-secret-" + "x" * 40


@pytest.fixture(scope="session")
def admin_url() -> str:
    """A libpq URL with rights to create databases."""
    configured = os.environ.get("PIVOTAL_TEST_DATABASE_URL")
    if configured:
        return configured
    return start_embedded(REPO / ".data" / "test-pg", database="postgres")


@pytest.fixture(scope="session")
def database_url(admin_url: str) -> Iterator[str]:
    """A fresh database for this session, migrated to head by Alembic."""
    name = f"pivotal_test_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(admin_url, name)
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
        worker_in_process=True,
        # Every anonymous request of the suite shares 127.0.0.1's budget; the rate-limit
        # tests start their own servers with small limits.
        rate_limit_per_minute=1_000_000,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerThread:
    """uvicorn serving the real app on a loopback port, in a background thread."""

    def __init__(self, app: FastAPI) -> None:
        self.port = _free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("API server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="session")
def api_server(settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(create_app(settings)) as server:
        yield server


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
