"""The export storage a process uses: the local directory, or S3 when a URL is configured."""

from __future__ import annotations

from pivotal_reporting.config import Settings
from pivotal_reporting.storage import ExportStorage, LocalStorage


def open_storage(settings: Settings) -> ExportStorage:
    """``S3Storage`` for ``export_storage_url=s3://...``, else ``LocalStorage(exports_path)``."""
    if settings.export_storage_url:
        from pivotal_reporting.storage_s3 import S3Location, S3Storage

        return S3Storage(
            S3Location.parse(settings.export_storage_url),
            part_bytes=settings.export_upload_part_bytes,
        )
    return LocalStorage(settings.exports_path)
