"""Export formats: one small module per format, and this registry of them.

Each module exposes an :class:`ExportFormatSpec` (name, media type, writer). The runner
picks the writer by the job's ``format``; downloads take the media type from here.
"""

from __future__ import annotations

from types import MappingProxyType

from pivotal_reporting.exports.formats.base import ExportDocument, ExportFormatSpec
from pivotal_reporting.exports.formats.csv import CSV
from pivotal_reporting.exports.formats.json import JSON
from pivotal_reporting.exports.formats.parquet import PARQUET
from pivotal_reporting.exports.formats.pdf import PDF
from pivotal_reporting.exports.formats.xlsx import XLSX

FORMATS: MappingProxyType[str, ExportFormatSpec] = MappingProxyType(
    {spec.name: spec for spec in (CSV, JSON, XLSX, PDF, PARQUET)}
)


def get_format(name: str) -> ExportFormatSpec:
    """The format registered as ``name``; ``LookupError`` when there is none."""
    try:
        return FORMATS[name]
    except KeyError:
        raise LookupError(f"unknown export format {name!r}") from None


__all__ = ["FORMATS", "ExportDocument", "ExportFormatSpec", "get_format"]
