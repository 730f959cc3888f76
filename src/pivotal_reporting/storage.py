"""Where export files live: a small storage interface and its local-directory backend.

Keys are relative, slash-separated names such as ``org_x/job_y-1.csv`` (letters, digits,
``_``, ``-``, ``.``; never ``..``): :func:`export_file_key` builds them, and their first
segment is :func:`organization_prefix`. A file becomes visible under its key only once it
is complete: writers fill a partial file, fsync it, and rename it into place atomically.

The retention job lists what is stored (:meth:`LocalStorage.listing`: keys with their
last-modified times), deletes (:meth:`LocalStorage.delete`, idempotent) and clears stale
partial writes. The S3 backend (``storage_s3.py``) implements the same
:class:`ExportStorage` protocol with objects and multipart uploads.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

_UNSAFE_IN_SEGMENT = re.compile(r"[^A-Za-z0-9_\-]")
_KEY_RE = re.compile(r"^[A-Za-z0-9_\-]+(?:/[A-Za-z0-9_\-][A-Za-z0-9_\-.]*)*$")
PARTIAL_DIR = ".partial"
READ_CHUNK_BYTES = 256 * 1024
# Exports hold finance data: readable by the service's user only, whatever the umask.
FILE_MODE = 0o600
DIR_MODE = 0o700


def organization_prefix(organization_id: str) -> str:
    """The first segment of every key of an organization's files."""
    return _UNSAFE_IN_SEGMENT.sub("_", organization_id)


def export_file_key(organization_id: str, job_id: str, attempt: int, file_format: str) -> str:
    """``<org>/<job id>-<attempt>.<format>``: each attempt of a job writes its own file."""
    return f"{organization_prefix(organization_id)}/{job_id}-{attempt}.{file_format}"


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key, else raise ``ValueError``."""
    if not _KEY_RE.match(key) or ".." in key.split("/"):
        raise ValueError(f"unsafe storage key: {key!r}")
    return key


class Partial(Protocol):
    """A file being written (any backend): hashed and counted as bytes pass."""

    @property
    def key(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    def write(self, data: bytes) -> None: ...


@dataclass
class PartialFile:
    """A file being written: bytes go to a hidden temporary file, hashed as they pass."""

    key: str
    path: Path
    handle: BinaryIO
    size: int = 0
    _sha256: hashlib._Hash = field(default_factory=hashlib.sha256)

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self._sha256.update(data)
        self.size += len(data)

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()


@dataclass(frozen=True)
class StoredFile:
    key: str
    size: int
    sha256: str


class ExportStorage(Protocol):
    def begin(self, key: str) -> Partial: ...
    def commit(self, partial: Partial) -> StoredFile: ...
    def abort(self, partial: Partial) -> None: ...
    def size(self, key: str) -> int: ...
    def iter_bytes(self, key: str) -> Iterator[bytes]: ...
    def delete(self, key: str) -> bool: ...
    def keys(self) -> Iterator[str]: ...
    def listing(self) -> Iterator[tuple[str, datetime]]: ...
    def discard_partials(self, prefix: str) -> int: ...
    def discard_stale_partials(self, older_than: datetime) -> int: ...
    def download_url(
        self, key: str, *, file_name: str, media_type: str, expires_in: int
    ) -> str | None: ...


class LocalStorage:
    """Export files under one directory (``settings.exports_path``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.partial_root = root / PARTIAL_DIR
        self.partial_root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        for directory in (root, self.partial_root):  # also tightens an older 0755 tree
            directory.chmod(DIR_MODE)

    def path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def begin(self, key: str) -> PartialFile:
        """Open a new partial file that :meth:`commit` will publish under ``key``."""
        validate_key(key)
        name = f"{key.replace('/', '__')}.{secrets.token_hex(4)}.part"
        path = self.partial_root / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        handle = os.fdopen(fd, "wb")  # closed by commit() or abort()
        return PartialFile(key=key, path=path, handle=handle)

    def commit(self, partial: Partial) -> StoredFile:
        """fsync the partial file and rename it to its key: all or nothing."""
        partial = _local(partial)
        partial.handle.flush()
        os.fsync(partial.handle.fileno())
        partial.handle.close()
        target = self.path(partial.key)
        _make_private_dirs(self.root, target.parent)
        os.replace(partial.path, target)
        _fsync_dir(target.parent)
        return StoredFile(key=partial.key, size=partial.size, sha256=partial.sha256)

    def abort(self, partial: Partial) -> None:
        """Close and remove a partial file (cancelled or failed export)."""
        partial = _local(partial)
        partial.handle.close()
        partial.path.unlink(missing_ok=True)

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        """The file's bytes in chunks of 256 KiB (``FileNotFoundError`` if absent)."""
        with open(self.path(key), "rb") as handle:
            while chunk := handle.read(READ_CHUNK_BYTES):
                yield chunk

    def delete(self, key: str) -> bool:
        """Remove the file stored under ``key``; ``False`` if there was none."""
        try:
            self.path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def keys(self) -> Iterator[str]:
        """Every complete file's key (partial files are never listed)."""
        for path in self.root.rglob("*"):
            relative = path.relative_to(self.root)
            if path.is_file() and relative.parts[0] != PARTIAL_DIR:
                yield relative.as_posix()

    def discard_partials(self, prefix: str) -> int:
        """Remove partial files of keys starting with ``prefix`` (left by a killed worker)."""
        flattened = prefix.replace("/", "__")
        removed = 0
        for path in self.partial_root.glob(f"{flattened}*.part"):
            path.unlink(missing_ok=True)
            removed += 1
        return removed

    # Beside the operations above: what retention and the download endpoint also use.

    def listing(self) -> Iterator[tuple[str, datetime]]:
        """Every complete file's key with its modification time (files gone meanwhile skipped)."""
        for key in self.keys():
            try:
                mtime = self.path(key).stat().st_mtime
            except FileNotFoundError:
                continue
            yield key, datetime.fromtimestamp(mtime, UTC)

    def discard_stale_partials(self, older_than: datetime) -> int:
        """Remove partial files last written before ``older_than`` (a writer long dead)."""
        removed = 0
        for path in self.partial_root.glob("*.part"):
            try:
                stale = path.stat().st_mtime < older_than.timestamp()
            except FileNotFoundError:
                continue
            if stale:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def download_url(
        self, key: str, *, file_name: str, media_type: str, expires_in: int
    ) -> str | None:
        """``None``: a local file has no URL of its own; the API streams it."""
        return None


def _local(partial: Partial) -> PartialFile:
    if not isinstance(partial, PartialFile):
        raise TypeError("not a partial file of the local storage")
    return partial


def _make_private_dirs(root: Path, directory: Path) -> None:
    """Create ``directory`` (below ``root``) and its missing parents with mode 0700."""
    missing = []
    while directory != root and not directory.is_dir():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        path.mkdir(mode=DIR_MODE, exist_ok=True)
        path.chmod(DIR_MODE)  # mkdir's mode is masked by the umask


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
