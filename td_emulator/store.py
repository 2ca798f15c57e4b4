"""In-memory state of the emulator, optionally written through to a SQLite file.

A BSD is kept as the dict GraphQL resolves (field names as the API spells them), plus a few
private keys starting with ``_`` that the schema never exposes (creation order, draft owners,
soft deletion). Every change goes through ``save`` so the SQLite copy never lags.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["Store", "new_cuid", "now_iso", "readable_id"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def readable_id(prefix: str) -> str:
    """``BSD-20260519-9QX2A7K3M``: prefix, creation day, nine random base-32 characters."""
    suffix = "".join(secrets.choice(_ALPHABET) for _ in range(9))
    return f"{prefix}-{datetime.now(UTC):%Y%m%d}-{suffix}"


def new_cuid() -> str:
    return "c" + secrets.token_hex(12)


class Store:
    """BSDs by kind, BSDD status logs and webhook settings, guarded by one re-entrant lock."""

    def __init__(self, sqlite_path: Path | None = None) -> None:
        self.lock = threading.RLock()
        self.bsds: dict[str, dict[str, dict[str, Any]]] = {}
        self.by_readable_id: dict[str, dict[str, Any]] = {}
        self.status_logs: list[dict[str, Any]] = []
        self.webhooks: dict[str, dict[str, Any]] = {}
        self._seq = 0
        self._db: sqlite3.Connection | None = None
        if sqlite_path is not None:
            self._db = sqlite3.connect(str(sqlite_path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS items (bucket TEXT, key TEXT, body TEXT, "
                             "PRIMARY KEY (bucket, key))")
            self._load()

    # --- persistence -------------------------------------------------------------------------

    def _load(self) -> None:
        assert self._db is not None
        for bucket, body in self._db.execute("SELECT bucket, body FROM items ORDER BY rowid"):
            item = json.loads(body)
            if bucket == "log":
                self.status_logs.append(item)
            elif bucket == "webhook":
                self.webhooks[item["id"]] = item
            else:
                self._index(bucket, item)
                self._seq = max(self._seq, item["_seq"])

    def _write(self, bucket: str, key: str, item: dict[str, Any]) -> None:
        if self._db is not None:
            self._db.execute("INSERT OR REPLACE INTO items VALUES (?, ?, ?)",
                             (bucket, key, json.dumps(item, separators=(",", ":"))))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # --- BSDs --------------------------------------------------------------------------------

    def _index(self, kind: str, bsd: dict[str, Any]) -> None:
        self.bsds.setdefault(kind, {})[bsd["id"]] = bsd
        self.by_readable_id[bsd.get("readableId") or bsd["id"]] = bsd

    def insert(self, kind: str, bsd: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._seq += 1
            bsd["_seq"] = self._seq
            bsd["_rev"] = 1
            bsd["_kind"] = kind
            self._index(kind, bsd)
            self._write(kind, bsd["id"], bsd)
            return bsd

    def save(self, bsd: dict[str, Any]) -> None:
        with self.lock:
            bsd["_rev"] = bsd.get("_rev", 0) + 1  # what was derived from it is stale now
            self._write(bsd["_kind"], bsd["id"], bsd)

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        bsd = self.bsds.get(kind, {}).get(key)
        if bsd is None:
            found = self.by_readable_id.get(key)
            bsd = found if found is not None and found["_kind"] == kind else None
        if bsd is None or bsd.get("_deleted"):
            return None
        return bsd

    def find(self, key: str) -> dict[str, Any] | None:
        """A BSD of any kind by id or readable id (the admin API accepts both)."""
        for kind in self.bsds:
            found = self.get(kind, key)
            if found is not None:
                return found
        return None

    def newest_first(self, kind: str) -> Iterator[dict[str, Any]]:
        items = [b for b in self.bsds.get(kind, {}).values() if not b.get("_deleted")]
        return iter(sorted(items, key=lambda b: b["_seq"], reverse=True))

    # --- status logs and webhooks --------------------------------------------------------------

    def add_status_log(self, bsd: dict[str, Any], status: str, user: dict[str, str],
                       updated_fields: dict[str, Any]) -> None:
        with self.lock:
            log: dict[str, Any] = {"id": new_cuid(), "status": status, "loggedAt": now_iso(),
                   "updatedFields": updated_fields,
                   "form": {"id": bsd["id"], "readableId": bsd.get("readableId")},
                   "user": user, "_seq": len(self.status_logs) + 1}
            self.status_logs.append(log)
            self._write("log", log["id"], log)

    def save_webhook(self, setting: dict[str, Any]) -> None:
        with self.lock:
            self.webhooks[setting["id"]] = setting
            self._write("webhook", setting["id"], setting)

    def delete_webhook(self, setting_id: str) -> None:
        with self.lock:
            self.webhooks.pop(setting_id, None)
            if self._db is not None:
                self._db.execute("DELETE FROM items WHERE bucket = 'webhook' AND key = ?", (setting_id,))

    def reset(self) -> None:
        with self.lock:
            self.bsds.clear()
            self.by_readable_id.clear()
            self.status_logs.clear()
            self.webhooks.clear()
            if self._db is not None:
                self._db.execute("DELETE FROM items")
