"""A backup's manifest: what was dumped, from which server and schema revision, checksums.

Written last, as ``manifest.json`` beside ``database.dump``; its row counts come from the
very snapshot pg_dump dumped, so a restore can prove that every table came back whole.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

FORMAT = "pivotal-reporting-backup/1"
MANIFEST_NAME = "manifest.json"
DUMP_NAME = "database.dump"


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class FileEntry(_Camel):
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Manifest(_Camel):
    format: str = FORMAT
    created_at: datetime
    database: str
    server_version: str
    server_version_num: int
    alembic_revision: str | None
    pg_dump_version: str
    files: dict[str, FileEntry]
    table_rows: dict[str, int] = Field(description="Rows per table in the dumped snapshot.")

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        manifest = cls.model_validate_json(text)
        if manifest.format != FORMAT:
            raise ValueError(f"unknown backup format {manifest.format!r} (expected {FORMAT})")
        return manifest
