"""The chain's pure parts: canonical payload and hash (no I/O)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    organization_id: str
    seq: int
    user_id: str | None
    action: str
    resource: str
    resource_id: str | None
    details: dict[str, Any]
    created_at: datetime
    prev_hash: str

    def canonical_payload(self) -> str:
        """Sorted-key, compact JSON of every field: the exact bytes that are hashed."""
        return _dumps(
            {
                "organization_id": self.organization_id,
                "seq": self.seq,
                "user_id": self.user_id,
                "action": self.action,
                "resource": self.resource,
                "resource_id": self.resource_id,
                "details": self.details,
                "created_at": self.created_at.isoformat(),
                "prev_hash": self.prev_hash,
            }
        )


def payload_around_head(
    *,
    organization_id: str,
    user_id: str | None,
    action: str,
    resource: str,
    resource_id: str | None,
    details: dict[str, Any],
    created_at: datetime,
) -> tuple[str, str, str]:
    """The canonical payload of an event whose ``prev_hash`` and ``seq`` are not known
    yet, in the three pieces around them: ``before + prev_hash + middle + str(seq) + after``
    is exactly ``canonical_payload()`` (sorted keys: ``prev_hash`` follows
    ``organization_id``, ``seq`` follows ``resource_id``), for the database to complete
    under the chain head's lock (service.append_event)."""

    def members(values: dict[str, Any]) -> str:
        return _dumps(values)[1:-1]

    before = members(
        {
            "action": action,
            "created_at": created_at.isoformat(),
            "details": details,
            "organization_id": organization_id,
        }
    )
    middle = members({"resource": resource, "resource_id": resource_id})
    return (
        "{" + before + ',"prev_hash":"',
        '",' + middle + ',"seq":',
        "," + members({"user_id": user_id}) + "}",
    )


def _dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def hash_payload(payload: str) -> str:
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
