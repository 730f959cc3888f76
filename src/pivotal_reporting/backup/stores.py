"""Where a backup lives: a local directory or an S3 prefix, holding a dump and a manifest.

Both write the dump as a stream (hashed as it passes) and the manifest last: a backup
without its manifest is unfinished and ``restore`` refuses it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

CHUNK_BYTES = 1024 * 1024


class BackupStoreError(RuntimeError):
    """The backup location can't be used (exists already, missing, unreadable)."""


@dataclass(frozen=True)
class WrittenFile:
    bytes: int
    sha256: str


class HashingReader:
    """A readable stream that hashes and counts what passes through it."""

    def __init__(self, source: IO[bytes]) -> None:
        self.source = source
        self.size = 0
        self._sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self._sha256.update(data)
        self.size += len(data)
        return data

    def written(self) -> WrittenFile:
        return WrittenFile(self.size, self._sha256.hexdigest())


class BackupStore(Protocol):
    def describe(self) -> str: ...
    def ensure_new(self) -> None: ...
    def write_stream(self, name: str, source: IO[bytes]) -> WrittenFile: ...
    def write_text(self, name: str, text: str) -> None: ...
    def read_text(self, name: str) -> str: ...
    def discard(self, name: str) -> None: ...
    @contextlib.contextmanager
    def local_copy(self, name: str) -> Iterator[Path]: ...


def open_store(location: str) -> BackupStore:
    """``s3://bucket/prefix`` or a directory path."""
    if location.startswith("s3://"):
        parts = urlsplit(location)
        if not parts.netloc:
            raise BackupStoreError(f"not an s3://bucket/prefix location: {location}")
        return S3Store(parts.netloc, parts.path.strip("/"))
    return DirectoryStore(Path(location))


class DirectoryStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return str(self.root)

    def ensure_new(self) -> None:
        if self.root.exists() and any(self.root.iterdir()):
            raise BackupStoreError(f"{self.root} is not empty; a backup never overwrites another")
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def write_stream(self, name: str, source: IO[bytes]) -> WrittenFile:
        reader = HashingReader(source)
        fd = os.open(self.root / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            while chunk := reader.read(CHUNK_BYTES):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        return reader.written()

    def write_text(self, name: str, text: str) -> None:
        fd = os.open(self.root / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())

    def discard(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)

    def read_text(self, name: str) -> str:
        try:
            return (self.root / name).read_text()
        except FileNotFoundError as exc:
            raise BackupStoreError(f"{self.root / name} is missing") from exc

    @contextlib.contextmanager
    def local_copy(self, name: str) -> Iterator[Path]:
        path = self.root / name
        if not path.is_file():
            raise BackupStoreError(f"{path} is missing")
        yield path


class S3Store:
    """Objects ``<prefix>/<name>`` in a bucket; endpoint and credentials the AWS way."""

    def __init__(self, bucket: str, prefix: str) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.client: S3Client = boto3.session.Session().client("s3")

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def ensure_new(self) -> None:
        listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
        if listed.get("KeyCount", 0):
            raise BackupStoreError(f"{self.describe()} is not empty; a backup never overwrites")

    def write_stream(self, name: str, source: IO[bytes]) -> WrittenFile:
        # upload_fileobj streams in multipart chunks (8 MiB): no local copy of the dump.
        reader = HashingReader(source)
        self.client.upload_fileobj(reader, self.bucket, self.prefix + name)  # type: ignore[arg-type]
        return reader.written()

    def write_text(self, name: str, text: str) -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=self.prefix + name,
            Body=text.encode(),
            ContentType="application/json",
        )

    def discard(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + name)

    def read_text(self, name: str) -> str:
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)
        except self.client.exceptions.NoSuchKey as exc:
            raise BackupStoreError(f"{self.describe()}{name} is missing") from exc
        return got["Body"].read().decode()

    @contextlib.contextmanager
    def local_copy(self, name: str) -> Iterator[Path]:
        """The object downloaded to a private temporary file (pg_restore wants a file)."""
        with tempfile.TemporaryDirectory(prefix="pivotal-restore-") as directory:
            path = Path(directory) / name
            try:
                self.client.download_file(self.bucket, self.prefix + name, str(path))
            except Exception as exc:
                raise BackupStoreError(
                    f"could not download {self.describe()}{name}: {exc}"
                ) from exc
            yield path
