"""Receipt files: one CSV per input file telling the business which row became which BSD.

Written where people look (``receipts/`` beside the drop folder), in the form Excel FR opens
without an import wizard (UTF-8 with BOM, ``;``), and replaced atomically so a reader never sees
half a file.

Receipts are opened in spreadsheets, so no cell may start a formula: a cell beginning with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return is written with a leading ``'`` (OWASP's advice for
CSV exports), and so is one beginning with ``'`` itself, which makes the prefix reversible when
the receipt is read back to be merged. A plain number (``-12``, ``-12.5``, ``-12,5``) is left as
it is: a spreadsheet reads it as a number, never as a formula, and a key stays the ERP's key.
Messages pass :func:`connector.logs.redact`: secrets masked, long texts cut to a labelled excerpt.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

import structlog

from connector.atomic_files import replace_text_file
from connector.logs import redact
from connector.sources.base import WriteBack
from connector.sources.safe_files import UnsafeEntry, open_regular

__all__ = ["DEFAULT_MODE", "RECEIPT_COLUMNS", "neutralise", "receipt_path", "update_receipt"]

RECEIPT_COLUMNS = ("key", "bsd_id", "readable_id", "status", "remote_status", "error", "updated_at")
DEFAULT_MODE = 0o640
"""Readable by the owner's group (the people who open receipts), written only by the connector."""

log = structlog.get_logger(__name__)

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")
_MAX_CELL = 2000


def neutralise(cell: str) -> str:
    """``cell`` as a spreadsheet shows it but never evaluates it."""
    if cell.startswith(_FORMULA_START) and not _NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def _restore(cell: str) -> str:
    return cell[1:] if cell.startswith("'") else cell


def receipt_path(folder: Path, unit: str) -> Path:
    return folder / f"{unit}.receipt.csv"


def _read(path: Path) -> dict[str, dict[str, str]]:
    rows: dict[str, dict[str, str]] = {}
    try:
        raw = open_regular(path)
    except FileNotFoundError:
        return rows
    except UnsafeEntry as exc:  # a link planted in receipts/: replaced by a new receipt, never read
        log.warning("receipt_replaced_unread", file=path.name, reason=str(exc))
        return rows
    with io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh, delimiter=";"):
            restored = {k: _restore(v or "") for k, v in row.items() if k in RECEIPT_COLUMNS}
            rows[restored["key"]] = restored
    return rows


def _row(update: WriteBack) -> dict[str, str]:
    return {
        "key": update.key,
        "bsd_id": update.bsd_id or "",
        "readable_id": update.readable_id or "",
        "status": update.status,
        "remote_status": update.remote_status or "",
        "error": redact((update.error or "").replace("\r", " ").replace("\n", " "), _MAX_CELL),
        "updated_at": update.updated_at,
    }


def update_receipt(path: Path, updates: Iterable[WriteBack], mode: int = DEFAULT_MODE) -> None:
    """Merge these updates into the receipt (one row per key, first-seen order), atomically.

    The file gets ``mode`` whatever the umask (a receipt is meant to be read by the business).
    """
    rows = _read(path)
    for update in updates:
        rows[update.key] = _row(update)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(fh: TextIO) -> None:
        writer = csv.DictWriter(fh, fieldnames=RECEIPT_COLUMNS, delimiter=";",
                                extrasaction="ignore", lineterminator="\r\n")
        writer.writeheader()
        writer.writerows({k: neutralise(v) for k, v in row.items()} for row in rows.values())

    replace_text_file(path, write, encoding="utf-8-sig", newline="", mode=mode)
