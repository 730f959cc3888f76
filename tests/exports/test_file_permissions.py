"""Export files hold finance data: 0600 files in 0700 directories, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session

from pivotal_reporting.config import Settings
from pivotal_reporting.storage import LocalStorage
from tests.exports.conftest import create_job, wait_for_job
from tests.factories import Tenant, create_customer, create_payment


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o022)  # the usual default: 0644 files, 0755 directories
    yield
    os.umask(previous)


@pytest.mark.usefixtures("permissive_umask")
def test_committed_file_and_its_directories_are_private(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "exports")
    partial = storage.begin("org_a/deep/job_b-1.csv")
    assert _mode(partial.path) == 0o600  # while being written, too
    partial.write(b"id\n1\n")
    stored = storage.commit(partial)
    target = storage.path(stored.key)
    assert _mode(target) == 0o600
    for directory in (target.parent, target.parent.parent, storage.root, storage.partial_root):
        assert _mode(directory) == 0o700, directory


@pytest.mark.usefixtures("permissive_umask")
def test_an_existing_open_tree_is_tightened(tmp_path: Path) -> None:
    root = tmp_path / "exports"
    (root / ".partial").mkdir(parents=True, mode=0o755)
    root.chmod(0o755)
    storage = LocalStorage(root)
    assert _mode(root) == 0o700
    assert _mode(storage.partial_root) == 0o700


def test_an_export_written_by_the_worker_is_0600(
    client: httpx.Client, db: Session, tenant: Tenant, settings: Settings
) -> None:
    customer = create_customer(db, org=tenant.org)
    create_payment(db, org=tenant.org, customer=customer)
    job_id = create_job(client, tenant)
    assert wait_for_job(client, tenant, job_id)["job"]["status"] == "completed"
    [path] = [p for p in settings.exports_path.rglob(f"*{job_id}*") if p.is_file()]
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    assert _mode(settings.exports_path) == 0o700
