"""Receipt files: one CSV per input file telling the business which row became which BSD.

Written where people look (``receipts/`` beside the drop folder), in the form Excel FR opens
without an import wizard (UTF-8 with BOM, ``;``), and replaced atomically so a reader never sees
half a file.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from connector.sources.base import WriteBack

__all__ = ["RECEIPT_COLUMNS", "receipt_path", "update_receipt"]

RECEIPT_COLUMNS = ("key", "bsd_id", "readable_id", "status", "remote_status", "error", "updated_at")


def receipt_path(folder: Path, unit: str) -> Path:
    return folder / f"{unit}.receipt.csv"


def _read(path: Path) -> dict[str, dict[str, str]]:
    rows: dict[str, dict[str, str]] = {}
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh, delimiter=";"):
                rows[row["key"]] = row
    except FileNotFoundError:
        pass
    return rows


def _row(update: WriteBack) -> dict[str, str]:
    return {
        "key": update.key,
        "bsd_id": update.bsd_id or "",
        "readable_id": update.readable_id or "",
        "status": update.status,
        "remote_status": update.remote_status or "",
        "error": (update.error or "").replace("\r", " ").replace("\n", " "),
        "updated_at": update.updated_at,
    }


def update_receipt(path: Path, updates: Iterable[WriteBack]) -> None:
    """Merge these updates into the receipt (one row per key, first-seen order), atomically."""
    rows = _read(path)
    for update in updates:
        rows[update.key] = _row(update)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=RECEIPT_COLUMNS, delimiter=";",
                                    extrasaction="ignore", lineterminator="\r\n")
            writer.writeheader()
            writer.writerows(rows.values())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
