"""Export file names: sanitised at request time, sent safely at download time.

A client-supplied ``fileName`` is only a display name: it never touches the file system
(files are stored under server-generated keys). It is still cleaned so that it cannot
carry a path, quotes, control characters (CR/LF header injection) or a wrong extension.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from urllib.parse import quote

from pivotal_reporting.config import Settings

MAX_NAME_CHARS = 150
_UNSAFE_CHARS = re.compile(r'[\\/:*?"<>|;,\x00-\x1f\x7f]')
_NOT_ASCII_SAFE = re.compile(r"[^A-Za-z0-9._\- ()]")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "parquet": "application/vnd.apache.parquet",
}


def download_path(settings: Settings, job_id: str) -> str:
    """The download route's path, as clients reach it (behind ``public_base_path``)."""
    return f"{settings.public_base_path.rstrip('/')}/v1/reports/export/{job_id}/download"


def default_file_name(report_type: str, export_format: str, now: datetime) -> str:
    return f"{report_type}_{now:%Y%m%d_%H%M%S}.{export_format}"


def safe_file_name(
    requested: str | None, report_type: str, export_format: str, now: datetime
) -> str:
    """A clean display name ending in ``.<format>``; the default when nothing usable is left."""
    if not requested:
        return default_file_name(report_type, export_format, now)
    name = unicodedata.normalize("NFC", requested)
    name = re.split(r"[\\/]", name)[-1]  # a path keeps only its last part
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in ("C", "Z") or ch == " ")
    name = _UNSAFE_CHARS.sub("_", name).strip(" .")
    stem = re.sub(r"\.(csv|json|txt|xlsx|pdf|parquet)$", "", name, flags=re.IGNORECASE).strip(" .")
    stem = stem[: MAX_NAME_CHARS - len(export_format) - 1]
    if not stem.strip("_ "):
        return default_file_name(report_type, export_format, now)
    return f"{stem}.{export_format}"


def ascii_file_name(name: str) -> str:
    """An ASCII-only fallback of ``name`` for the plain ``filename=`` parameter."""
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    decomposed = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    cleaned = _NOT_ASCII_SAFE.sub("_", decomposed).strip(" ._") or "export"
    return f"{cleaned}.{extension}" if extension else cleaned


def content_disposition(name: str) -> str:
    """``attachment`` with a quoted ASCII fallback and the exact UTF-8 name (RFC 6266/8187)."""
    return (
        f"attachment; filename=\"{ascii_file_name(name)}\"; filename*=UTF-8''{quote(name, safe='')}"
    )
