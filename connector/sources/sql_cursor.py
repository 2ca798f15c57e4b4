"""Cursor-mode bookkeeping: how far it is safe to move ``updated_at > :safe`` (see docs/sources.md).

The rule is clock-free so that it works for timestamps and increasing ids alike, and survives
clock skew between the application servers and the database: a poll records the highest cursor
value it saw (an *observation*); the safe point may only move up to an observation made at least
``lag_seconds`` before a later poll that re-read everything above the old safe point. A row
committed late, with a cursor value below what was already seen, is therefore still found as long
as its transaction commits within the lag. Rows above the safe point are read again on each poll;
their hashes (in :class:`~connector.sources.sql_hash_store.HashStore`, tagged with the poll's
generation) keep them from being handed over twice.

A transaction that stays open longer than the lag can still commit a row below the safe point
(a tie with it, or a back-dated value): the *reconciliation* (``rec_*`` fields, driven by
:class:`~connector.sources.sql_source.SqlSource`) compares, every ``reconcile_seconds``, the key
and cursor value of every row at or below the safe point with what was handed over, and reads the
rows it does not know.
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
    rec_at: float | None = None
    """Clock time the last reconciliation finished (None: never; due at the next poll)."""
    rec_pos: list[Any] | None = None
    """Key reached by an interrupted reconciliation, resumed at the next poll."""
    rec_seed: bool = False
    """The next reconciliation builds the key map (new hash store, or a checkpoint from before
    reconciliations existed): rows it finds are handed over but not reported as late."""

    @classmethod
    def from_checkpoint(cls, data: Mapping[str, Any] | None) -> CursorState:
        if not data:
            return cls()
        pos = data.get("pos")
        rec = data.get("rec")
        if rec is None:  # a checkpoint from before reconciliations: the key map must be built
            rec = {"seed": data.get("safe") is not None}
        return cls(
            safe=decode_value(data.get("safe")),
            observations=[(t, decode_value(v), g) for t, v, g in data.get("obs", [])],
            generation=int(data.get("gen", 0)),
            epoch=data.get("epoch"),
            position=None if pos is None else (decode_value(pos[0]), [decode_value(v) for v in pos[1]]),
            rec_at=rec.get("at"),
            rec_pos=None if rec.get("pos") is None else [decode_value(v) for v in rec["pos"]],
            rec_seed=bool(rec.get("seed", False)),
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
            "rec": {"at": self.rec_at, "seed": self.rec_seed,
                    "pos": None if self.rec_pos is None else [encode_value(v) for v in self.rec_pos]},
        }

    def reconcile_due(self, now: float, interval: float) -> bool:
        """Whether a reconciliation runs after this poll (always when one was interrupted)."""
        if interval <= 0:
            return False
        return self.rec_pos is not None or self.rec_at is None or now - self.rec_at >= interval

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
