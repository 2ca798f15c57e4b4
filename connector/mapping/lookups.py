"""Lookups in reference tables, as pure functions of already loaded tables.

A mapping names reference tables (``[lookups.clients]``: a CSV file or an SQL query, keyed by one
of its columns); a field reads ``{ lookup = "clients", by = "code_client", column = "mail" }``.
Loading the tables is I/O and lives in ``connector.sources.lookups``; here they are plain dicts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["LookupRef", "LookupTable", "lookup_key", "table_from_rows"]


def lookup_key(value: Any) -> str:
    """How keys are compared: stripped, case-insensitive (``" c042 "`` finds ``C042``)."""
    return "" if value is None else str(value).strip().casefold()


@dataclass(frozen=True)
class LookupTable:
    """One loaded reference table: normalized key → row, and a fingerprint of its content."""

    name: str
    rows: Mapping[str, Mapping[str, Any]]
    columns: tuple[str, ...]
    fingerprint: str
    origin: str
    """Where it was read from, for messages (``clients.csv``, ``query of lookup "clients"``)."""


def table_from_rows(name: str, key: str, rows: Iterable[Mapping[str, Any]], columns: Iterable[str],
                    origin: str) -> LookupTable:
    """Index ``rows`` by ``key``; a key seen twice is an error naming both (not a silent pick)."""
    indexed: dict[str, Mapping[str, Any]] = {}
    digest = hashlib.sha256()
    cols = tuple(columns)
    if key not in cols:
        raise ValueError(f'lookup "{name}": {origin} has no column "{key}" (columns: {", ".join(cols)})')
    for number, row in enumerate(rows, start=1):
        value = lookup_key(row.get(key))
        if not value:
            continue
        if value in indexed:
            raise ValueError(f'lookup "{name}": key "{row.get(key)}" appears twice in {origin} '
                             f"(row {number} and an earlier one)")
        indexed[value] = dict(row)
    for value in sorted(indexed):
        digest.update(json.dumps([value, indexed[value]], sort_keys=True, default=str).encode())
        digest.update(b"\n")
    return LookupTable(name, indexed, cols, digest.hexdigest()[:32], origin)


@dataclass(frozen=True)
class LookupRef:
    """A field's read in a lookup: ``column`` of the row whose key is the record's ``by`` column."""

    name: str
    by: str
    column: str
    missing: str = "reject"
    """``reject``: a key absent from the table rejects the record; ``empty``: the field is empty."""

    def describe(self) -> str:
        return f'lookup "{self.name}" by column "{self.by}", column "{self.column}"'

    def read(self, values: Mapping[str, Any], tables: Mapping[str, LookupTable]) -> Any:
        """The looked-up value (None for an empty ``by``); ValueError for a missing key."""
        raw = values.get(self.by)
        key = lookup_key(raw)
        if not key:
            return None
        table = tables.get(self.name)
        if table is None:
            raise ValueError(f'lookup "{self.name}" is not loaded')
        row = table.rows.get(key)
        if row is None:
            if self.missing == "empty":
                return None
            raise ValueError(f'"{raw}" is not in lookup "{self.name}" ({table.origin})')
        return row.get(self.column)
