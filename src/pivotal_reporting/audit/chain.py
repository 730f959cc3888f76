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
        return json.dumps(
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
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )


def hash_payload(payload: str) -> str:
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
