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
_NOT_ASCII_SAFE = re.compile(r"[^A-Za-z0-9._\- ()']")
# Characters NFKD does not reduce to ASCII, written the way a person would type them.
_ASCII_SPELLING = str.maketrans(
    {
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d", "-"),
        **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u00b4\u0060", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb\u2039\u203a", "'"),
        "\u2026": "...",
        "\u00d7": "x",
        "\u00df": "ss",
        "\u00e6": "ae",
        "\u00c6": "AE",
        "\u0153": "oe",
        "\u0152": "OE",
        "\u00f8": "o",
        "\u00d8": "O",
        "\u0142": "l",
        "\u0141": "L",
        "\u0111": "d",
        "\u0110": "D",
        "\u00f0": "d",
        "\u00fe": "th",
        "\u00de": "Th",
        "\u20ac": "EUR",
        "\u00a3": "GBP",
    }
)
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


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
    stem = re.sub(r"\.(csv|json|txt|xlsx)$", "", name, flags=re.IGNORECASE).strip(" .")
    stem = stem[: MAX_NAME_CHARS - len(export_format) - 1]
    if not stem.strip("_ "):
        return default_file_name(report_type, export_format, now)
    return f"{stem}.{export_format}"


def ascii_file_name(name: str) -> str:
    """An ASCII-only fallback of ``name`` for the plain ``filename=`` parameter."""
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    spelled = unicodedata.normalize("NFKC", stem).translate(_ASCII_SPELLING)
    decomposed = unicodedata.normalize("NFKD", spelled).encode("ascii", "ignore").decode()
    cleaned = _NOT_ASCII_SAFE.sub("_", decomposed)
    cleaned = re.sub(r"\.{2,}", ".", cleaned).strip(" ._") or "export"
    return f"{cleaned}.{extension}" if extension else cleaned


def content_disposition(name: str) -> str:
    """``attachment`` with a quoted ASCII fallback and the exact UTF-8 name (RFC 6266/8187)."""
    return (
        f"attachment; filename=\"{ascii_file_name(name)}\"; filename*=UTF-8''{quote(name, safe='')}"
    )
