"""The base of every JSON body the API reads or writes: snake_case in Python,
camelCase on the wire (``report_type`` ↔ ``reportType``), either accepted on input."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class CamelModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True
    )
