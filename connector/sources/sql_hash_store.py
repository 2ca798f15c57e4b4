"""What each row looked like when it was last handed over, in a SQLite file under ``state_dir``.

Scan mode keeps one hash per row of the table (~30 MB for 1,000,000 rows: too big for a JSON
checkpoint, small for SQLite); cursor mode keeps the rows above its safe point, tagged with the
poll (*generation*) that handed them over, and drops a generation once the safe point passed it.
Writes happen only in ``acknowledge`` (after the engine committed), so a crash can make a row be
handed over again (a no-op for the engine) but never lost. The *epoch* ties the file to the
engine's checkpoint: a state store rebuilt from scratch starts a new epoch and forgets the file.

Cursor mode also keeps a *key map*: key → cursor value of every row handed over (never pruned,
~40 MB for 1,000,000 rows), which the reconciliation compares with the source to find rows a
long transaction committed below the safe point.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["HashStore"]


class HashStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
        self._db.execute("CREATE TABLE IF NOT EXISTS hashes (k TEXT PRIMARY KEY, h TEXT, g INTEGER) "
                         "WITHOUT ROWID")
        self._db.execute("CREATE INDEX IF NOT EXISTS ix_hashes_g ON hashes (g)")
        self._db.execute("CREATE TABLE IF NOT EXISTS keymap (k TEXT PRIMARY KEY, c TEXT) WITHOUT ROWID")

    def epoch(self) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE name = 'epoch'").fetchone()
        return None if row is None else str(row[0])

    def start_epoch(self) -> str:
        """Forget every hash: the engine's checkpoint no longer matches this file."""
        epoch = uuid.uuid4().hex[:12]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM hashes")
            self._db.execute("DELETE FROM keymap")
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('epoch', ?)", (epoch,))
            self._db.execute("COMMIT")
        return epoch

    def lookup(self, keys: Sequence[str]) -> dict[str, str]:
        """Key → content hash last handed over."""
        return self._select("SELECT k, h FROM hashes", keys)

    def cursors(self, keys: Sequence[str]) -> dict[str, str]:
        """Key → cursor value (encoded) last handed over, from the key map."""
        return self._select("SELECT k, c FROM keymap", keys)

    def _select(self, sql: str, keys: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                part = list(keys[i : i + 500])
                marks = ",".join("?" * len(part))
                found.update(self._db.execute(f"{sql} WHERE k IN ({marks})", part))
        return found

    def save(self, pairs: Iterable[tuple[str, str]], generation: int = 0,
             prune_upto: int | None = None, cursors: Iterable[tuple[str, str]] = ()) -> None:
        """Record handed-over rows (hashes, and cursor values in the key map); drop generations
        the safe point has passed; in one transaction."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?)",
                                 ((k, h, generation) for k, h in pairs))
            self._db.executemany("INSERT OR REPLACE INTO keymap VALUES (?, ?)", cursors)
            if prune_upto is not None:
                self._db.execute("DELETE FROM hashes WHERE g <= ?", (prune_upto,))
            self._db.execute("COMMIT")

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM hashes").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
