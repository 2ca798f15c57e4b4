"""A stable fingerprint of a mapped payload.

The state store compares it to decide whether a record changed (update or nothing to do), and
reconciliation matches it against BSDs found remotely, so it must not depend on key order,
float spelling or the Python version.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["canonical_json", "payload_hash"]


def canonical_json(payload: Any) -> str:
    """Sorted keys, no spaces, UTF-8 characters kept: the same payload gives the same text."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def payload_hash(payload: Any) -> str:
    """Hex sha256 of the canonical JSON."""
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()
