"""Cursor-mode bookkeeping: how far it is safe to move ``updated_at > :safe`` (see docs/sources.md).

The rule is clock-free so that it works for timestamps and increasing ids alike, and survives
clock skew between the application servers and the database: a poll records the highest cursor
value it saw (an *observation*); the safe point may only move up to an observation made at least
``lag_seconds`` before a later poll that re-read everything above the old safe point. A row
committed late, with a cursor value below what was already seen, is therefore still found as long
as its transaction commits within the lag. Rows above the safe point are read again on each poll;
their hashes (in :class:`~connector.sources.sql_hash_store.HashStore`, tagged with the poll's
generation) keep them from being handed over twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.sources.sql_values import decode_value, encode_value

__all__ = ["CursorState"]


@dataclass
class CursorState:
    safe: Any = None
    observations: list[tuple[float, Any, int]] = field(default_factory=list)
    """(time the poll ended, highest cursor value seen so far, generation of that poll)."""
    generation: int = 0
    """Number of the current poll; rows handed over are tagged with it in the hash store."""
    epoch: str | None = None
    position: tuple[Any, list[Any]] | None = None
    """Where an interrupted poll stopped; such a resumed poll never moves the safe point."""

    @classmethod
    def from_checkpoint(cls, data: Mapping[str, Any] | None) -> CursorState:
        if not data:
            return cls()
        pos = data.get("pos")
        return cls(
            safe=decode_value(data.get("safe")),
            observations=[(t, decode_value(v), g) for t, v, g in data.get("obs", [])],
            generation=int(data.get("gen", 0)),
            epoch=data.get("epoch"),
            position=None if pos is None else (decode_value(pos[0]), [decode_value(v) for v in pos[1]]),
        )

    def to_checkpoint(self) -> dict[str, Any]:
        return {
            "v": 2,
            "safe": encode_value(self.safe),
            "obs": [[t, encode_value(v), g] for t, v, g in self.observations],
            "gen": self.generation,
            "epoch": self.epoch,
            "pos": None if self.position is None else
            [encode_value(self.position[0]), [encode_value(v) for v in self.position[1]]],
        }

    def highest(self) -> Any:
        return self.observations[-1][1] if self.observations else self.safe

    def finish_poll(self, *, started: float, ended: float, highest: Any, lag: float,
                    full: bool) -> int | None:
        """Record what this poll saw, move the safe point as far as the lag allows.

        Returns the last generation whose remembered rows are now all at or below the safe point
        (they can be forgotten), or None.
        """
        if highest is not None and (not self.observations or highest != self.observations[-1][1]):
            self.observations.append((ended, highest, self.generation))
        prune = None
        if full:
            ripe = [obs for obs in self.observations if obs[0] <= started - lag]
            if ripe:
                _, value, prune = ripe[-1]
                self.safe = value if self.safe is None else max(self.safe, value)
                self.observations = [obs for obs in self.observations if obs[0] > started - lag]
        self.position = None
        self.generation += 1
        return prune
