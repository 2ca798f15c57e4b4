"""Cursor-mode bookkeeping: how far it is safe to move ``updated_at > :safe`` (see docs/sources.md).

The rule is clock-free so that it works for timestamps and increasing ids alike, and survives
clock skew between the application servers and the database: a poll records the highest cursor
value it saw (an *observation*); the safe point may only move up to an observation made at least
``lag_seconds`` before a later poll that re-read everything above the old safe point. A row
committed late, with a cursor value below what was already seen, is therefore still found as long
as its transaction commits within the lag. Rows above the safe point are read again on each poll;
the hashes in ``seen`` keep them from being handed over twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.sources.sql_values import decode_value, encode_value

__all__ = ["SEEN_LIMIT", "CursorState"]

SEEN_LIMIT = 2000
"""Rows remembered above the safe point; beyond that a re-read row is handed over again and the
engine's payload-hash dedupe makes it a no-op, so the checkpoint stays small."""


@dataclass
class CursorState:
    safe: Any = None
    observations: list[tuple[float, Any]] = field(default_factory=list)
    seen: dict[str, tuple[str, Any]] = field(default_factory=dict)
    """Key → (content hash, cursor value) of rows already handed over above the safe point."""
    position: tuple[Any, list[Any]] | None = None
    """Where an interrupted poll stopped; such a resumed poll never moves the safe point."""

    @classmethod
    def from_checkpoint(cls, data: Mapping[str, Any] | None) -> CursorState:
        if not data:
            return cls()
        pos = data.get("pos")
        return cls(
            safe=decode_value(data.get("safe")),
            observations=[(t, decode_value(v)) for t, v in data.get("obs", [])],
            seen={k: (h, decode_value(c)) for k, (h, c) in data.get("seen", {}).items()},
            position=None if pos is None else (decode_value(pos[0]), [decode_value(v) for v in pos[1]]),
        )

    def to_checkpoint(self) -> dict[str, Any]:
        seen = list(self.seen.items())[-SEEN_LIMIT:]
        return {
            "v": 1,
            "safe": encode_value(self.safe),
            "obs": [[t, encode_value(v)] for t, v in self.observations],
            "seen": {k: [h, encode_value(c)] for k, (h, c) in seen},
            "pos": None if self.position is None else
            [encode_value(self.position[0]), [encode_value(v) for v in self.position[1]]],
        }

    def is_new(self, key: str, digest: str) -> bool:
        known = self.seen.get(key)
        return known is None or known[0] != digest

    def remember(self, key: str, digest: str, cursor: Any) -> None:
        self.seen.pop(key, None)  # re-insert so the dict stays in cursor order
        self.seen[key] = (digest, cursor)
        if len(self.seen) > 2 * SEEN_LIMIT:
            for old in list(self.seen)[: len(self.seen) - SEEN_LIMIT]:
                del self.seen[old]

    def highest(self) -> Any:
        return self.observations[-1][1] if self.observations else self.safe

    def finish_poll(self, *, started: float, ended: float, highest: Any, lag: float, full: bool) -> None:
        """Record what this poll saw, then move the safe point as far as the lag allows."""
        if highest is not None and (not self.observations or highest != self.observations[-1][1]):
            self.observations.append((ended, highest))
        if full:
            ripe = [obs for obs in self.observations if obs[0] <= started - lag]
            if ripe:
                value = ripe[-1][1]
                self.safe = value if self.safe is None else max(self.safe, value)
                self.observations = [obs for obs in self.observations if obs[0] > started - lag]
        if self.safe is not None:
            self.seen = {k: v for k, v in self.seen.items() if v[1] is None or v[1] > self.safe}
        self.position = None
