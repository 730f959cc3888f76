"""Export files as objects in S3-compatible storage (``PIVOTAL_EXPORT_STORAGE_URL=s3://...``).

The same :class:`~pivotal_reporting.storage.ExportStorage` contract as the local
directory, with objects under ``s3://bucket/prefix/<key>``:

* **Writing streams.** Bytes fill one in-memory part of ``part_bytes`` (8 MiB by default,
  so an export may reach S3's 10,000 parts at about 78 GiB); each full part is uploaded
  from the writer thread (boto3 is synchronous, and the COPY
  drain already runs in a thread), so a worker holds at most one part per export. The
  SHA-256 is computed as bytes pass.
* **All or nothing.** No object exists under the key until the upload completes:
  a file that ends inside its first part is one ``PutObject``; a longer one is a multipart
  upload, completed last. A cancelled or failed export aborts the upload (S3 then drops
  its parts); the next attempt of a job also aborts uploads its killed predecessors left,
  and the retention sweep aborts uploads older than a day.
* **The checksum is metadata** (``x-amz-meta-sha256``). S3 computes no full-object SHA-256
  of a multipart upload and metadata can only be given when an object is created, so a
  multipart object is copied onto itself with the metadata (a server-side copy, no bytes
  through the worker) before the job row that names it commits.

Endpoint, region and credentials come the standard AWS way (``AWS_ENDPOINT_URL``,
``AWS_REGION``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, profiles, instance roles).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pivotal_reporting.filenames import MEDIA_TYPES, content_disposition
from pivotal_reporting.storage import Partial, StoredFile, validate_key

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

log = logging.getLogger(__name__)

SHA256_METADATA = "sha256"  # sent as x-amz-meta-sha256
DEFAULT_PART_BYTES = 8 * 1024 * 1024
READ_CHUNK_BYTES = 256 * 1024
# CopyObject copies up to 5 GiB in one request; larger objects need a multipart copy.
MAX_SINGLE_COPY_BYTES = 5 * 1024**3
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key prefix (``""`` or ending in ``/``)."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"not an s3://bucket/prefix URL: {url!r}")
        prefix = parts.path.strip("/")
        return cls(parts.netloc, f"{prefix}/" if prefix else "")

    def object_key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def key_of(self, object_key: str) -> str:
        return object_key[len(self.prefix) :]


@dataclass
class ObjectUpload:
    """An export being written to S3: the current part in memory, earlier parts uploaded."""

    key: str
    object_key: str
    storage: S3Storage = field(repr=False)
    size: int = 0
    upload_id: str | None = None
    parts: list[CompletedPartTypeDef] = field(default_factory=list)
    completed: bool = False
    _chunks: list[bytes] = field(default_factory=list, repr=False)
    _buffered: int = 0
    _sha256: hashlib._Hash = field(default_factory=hashlib.sha256, repr=False)

    def write(self, data: bytes) -> None:
        self._sha256.update(data)
        self.size += len(data)
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered >= self.storage.part_bytes:
            # Everything held becomes one part (part_bytes plus at most one write): S3
            # needs parts of at least 5 MiB but not of equal size, and no byte is copied
            # twice.
            self.storage.upload_part(self, self.take_buffer())

    def take_buffer(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks, self._buffered = [], 0
        return data

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()


def _is_missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _NOT_FOUND


class S3Storage:
    """Export files as objects under one bucket and prefix."""

    def __init__(
        self,
        location: S3Location,
        *,
        part_bytes: int = DEFAULT_PART_BYTES,
        client: S3Client | None = None,
    ) -> None:
        self.location = location
        self.part_bytes = part_bytes
        # A client is thread-safe (a session is not): one per storage, shared by threads.
        self.client: S3Client = client or boto3.session.Session().client(
            "s3", config=Config(retries={"mode": "standard"}, signature_version="s3v4")
        )

    # --- writing ---------------------------------------------------------------------

    def begin(self, key: str) -> ObjectUpload:
        """A new upload that :meth:`commit` completes under ``key`` (nothing is sent yet)."""
        return ObjectUpload(key=key, object_key=self.location.object_key(key), storage=self)

    def upload_part(self, upload: ObjectUpload, body: bytes) -> None:
        """Send one full part, starting the multipart upload with the first one."""
        bucket = self.location.bucket
        if upload.upload_id is None:
            created = self.client.create_multipart_upload(
                Bucket=bucket, Key=upload.object_key, ContentType=_content_type(upload.key)
            )
            upload.upload_id = created["UploadId"]
        number = len(upload.parts) + 1
        sent = self.client.upload_part(
            Bucket=bucket,
            Key=upload.object_key,
            UploadId=upload.upload_id,
            PartNumber=number,
            Body=body,
        )
        upload.parts.append({"ETag": sent["ETag"], "PartNumber": number})

    def commit(self, partial: Partial) -> StoredFile:
        """Make the object exist, complete and carrying its SHA-256, under its key."""
        upload = _upload(partial)
        bucket, key = self.location.bucket, upload.object_key
        metadata = {SHA256_METADATA: upload.sha256}
        if upload.upload_id is None:  # it all fitted in the first part: one request
            self.client.put_object(
                Bucket=bucket,
                Key=key,
                Body=upload.take_buffer(),
                ContentType=_content_type(upload.key),
                Metadata=metadata,
            )
        else:
            tail = upload.take_buffer()
            if tail:
                self.upload_part(upload, tail)  # the last part may be shorter
            self.client.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=upload.upload_id,
                MultipartUpload={"Parts": upload.parts},
            )
            upload.completed = True  # from here on, abort() deletes the object
            self._set_metadata(key, upload.key, upload.size, metadata)
        upload.completed = True
        return StoredFile(key=upload.key, size=upload.size, sha256=upload.sha256)

    def _set_metadata(self, object_key: str, key: str, size: int, metadata: dict[str, str]) -> None:
        source = {"Bucket": self.location.bucket, "Key": object_key}
        if size <= MAX_SINGLE_COPY_BYTES:
            self.client.copy_object(
                Bucket=self.location.bucket,
                Key=object_key,
                CopySource=source,  # type: ignore[arg-type]
                Metadata=metadata,
                MetadataDirective="REPLACE",
                ContentType=_content_type(key),
            )
            return
        self.client.copy(
            source,  # type: ignore[arg-type]
            self.location.bucket,
            object_key,
            ExtraArgs={"Metadata": metadata, "ContentType": _content_type(key)},
            Config=TransferConfig(multipart_chunksize=512 * 1024**2),
        )

    def abort(self, partial: Partial) -> None:
        """Drop the upload's parts (or the object, if it was completed but not published).

        Best effort: it runs while another error propagates, which it must not mask; an
        upload it could not abort is aborted by the next attempt or the retention sweep.
        """
        upload = _upload(partial)
        upload.take_buffer()
        try:
            if upload.completed:
                self.client.delete_object(Bucket=self.location.bucket, Key=upload.object_key)
            elif upload.upload_id is not None:
                self._abort_upload(upload.object_key, upload.upload_id)
        except (ClientError, BotoCoreError):
            log.warning("could not abort the upload of %s", upload.key, exc_info=True)

    def _abort_upload(self, object_key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(
                Bucket=self.location.bucket, Key=object_key, UploadId=upload_id
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                raise

    def discard_partials(self, prefix: str) -> int:
        """Abort unfinished uploads of keys starting with ``prefix`` (a killed worker's)."""
        return self._abort_uploads(self.location.object_key(prefix), None)

    def discard_stale_partials(self, older_than: datetime) -> int:
        """Abort every unfinished upload under the prefix initiated before ``older_than``."""
        return self._abort_uploads(self.location.prefix, older_than)

    def _abort_uploads(self, prefix: str, initiated_before: datetime | None) -> int:
        aborted = 0
        pages = self.client.get_paginator("list_multipart_uploads")
        for page in pages.paginate(Bucket=self.location.bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                if initiated_before is not None and upload["Initiated"] >= initiated_before:
                    continue
                self._abort_upload(upload["Key"], upload["UploadId"])
                aborted += 1
        return aborted

    # --- reading ---------------------------------------------------------------------

    def size(self, key: str) -> int:
        """The object's size in bytes (``FileNotFoundError`` if there is none)."""
        return int(self._head(key)["ContentLength"])

    def sha256_of(self, key: str) -> str | None:
        """The SHA-256 stored in the object's metadata."""
        value = self._head(key).get("Metadata", {}).get(SHA256_METADATA)
        return str(value) if value is not None else None

    def _head(self, key: str) -> Any:
        try:
            return self.client.head_object(
                Bucket=self.location.bucket, Key=self.location.object_key(key)
            )
        except ClientError as exc:
            if _is_missing(exc):
                raise FileNotFoundError(key) from exc
            raise

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        """The object's bytes in chunks of 256 KiB (``FileNotFoundError`` if absent)."""
        try:
            got = self.client.get_object(
                Bucket=self.location.bucket, Key=self.location.object_key(key)
            )
        except ClientError as exc:
            if _is_missing(exc):
                raise FileNotFoundError(key) from exc
            raise
        body = got["Body"]
        try:
            yield from body.iter_chunks(READ_CHUNK_BYTES)
        finally:
            body.close()

    def download_url(
        self, key: str, *, file_name: str, media_type: str, expires_in: int
    ) -> str | None:
        """A presigned GET of the object, valid ``expires_in`` seconds, naming the file."""
        return self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.location.bucket,
                "Key": self.location.object_key(key),
                "ResponseContentDisposition": content_disposition(file_name),
                "ResponseContentType": media_type,
                "ResponseCacheControl": "private, no-store",
            },
            ExpiresIn=expires_in,
        )

    # --- listing and deleting (retention) --------------------------------------------

    def delete(self, key: str) -> bool:
        """Delete the object under ``key``; ``False`` if there was none."""
        try:
            self._head(key)
        except FileNotFoundError:
            return False
        self.client.delete_object(Bucket=self.location.bucket, Key=self.location.object_key(key))
        return True

    def listing(self) -> Iterator[tuple[str, datetime]]:
        """Every object's key with its LastModified (uploads in progress are not objects)."""
        pages = self.client.get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.location.bucket, Prefix=self.location.prefix):
            for item in page.get("Contents", []):
                yield self.location.key_of(item["Key"]), item["LastModified"]

    def keys(self) -> Iterator[str]:
        for key, _ in self.listing():
            yield key


def _upload(partial: Partial) -> ObjectUpload:
    if not isinstance(partial, ObjectUpload):
        raise TypeError("not an upload of the S3 storage")
    return partial


def _content_type(key: str) -> str:
    return MEDIA_TYPES.get(key.rsplit(".", 1)[-1], "application/octet-stream")
