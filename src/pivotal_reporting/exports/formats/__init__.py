"""Export formats: one small module per format, and this registry of them.

Each format is a name, a media type and a writer (``write`` in its module). The runner
picks the writer by the job's ``format``; downloads take the media type from here.
The typed formats' modules (pyarrow, Typst) are imported on their first export only, so
a worker that never writes one does not carry them.
"""

from __future__ import annotations

import importlib
from types import MappingProxyType
from typing import Any

from pivotal_reporting.exports.formats.base import (
    ExportDocument,
    ExportFormatSpec,
    FormatWriter,
)
from pivotal_reporting.exports.writers import WriteResult
from pivotal_reporting.filenames import MEDIA_TYPES


def _writer(module: str) -> FormatWriter:
    """The ``write`` of ``formats.<module>``, imported when first called."""

    async def write(*args: Any) -> WriteResult:
        loaded = importlib.import_module(f"pivotal_reporting.exports.formats.{module}")
        result: WriteResult = await loaded.write(*args)
        return result

    return write


FORMATS: MappingProxyType[str, ExportFormatSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            ExportFormatSpec("csv", MEDIA_TYPES["csv"], _writer("csv")),
            ExportFormatSpec("json", MEDIA_TYPES["json"], _writer("json")),
            ExportFormatSpec("xlsx", MEDIA_TYPES["xlsx"], _writer("xlsx")),
            ExportFormatSpec("pdf", MEDIA_TYPES["pdf"], _writer("pdf"), streams_rows=False),
            ExportFormatSpec("parquet", MEDIA_TYPES["parquet"], _writer("parquet")),
        )
    }
)


def get_format(name: str) -> ExportFormatSpec:
    """The format registered as ``name``; ``LookupError`` when there is none."""
    try:
        return FORMATS[name]
    except KeyError:
        raise LookupError(f"unknown export format {name!r}") from None


__all__ = ["FORMATS", "ExportDocument", "ExportFormatSpec", "get_format"]
