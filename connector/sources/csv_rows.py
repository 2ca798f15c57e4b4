"""Parse one dropped CSV file into batches of records and row problems, streaming.

A bad row never rejects its file: it becomes a :class:`RowProblem` naming ``file:line N``, the
column and the reason, and the next row is read. Only a file that cannot be understood at all
(empty, binary, no header, key column missing from the header) raises :class:`FileRejected`.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

from connector.sources.base import RowProblem, SourceRecord
from connector.sources.csv_text import FileFacts, sniff_delimiter
from connector.sources.keys import NULL_MARKERS, join_key
from connector.sources.safe_files import UnsafeEntry, open_regular

__all__ = ["CsvFileReader", "FileRejected", "RowBatch"]

_SURROGATES = re.compile("[\udc80-\udcff]+")
_RAW_LIMIT = 200


class FileRejected(Exception):
    """The whole file cannot be read; the reason goes to ``rejected/<file>.error.txt``."""


@dataclass
class RowBatch:
    records: list[SourceRecord] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    last_line: int = 0
    """Last physical line consumed; a resumed read skips rows starting at or before it."""


class _KeyLedger:
    """Keys already seen in this file, on disk so a 1,000,000-row file keeps memory bounded."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("")  # private temporary database, spilled to disk by SQLite
        self._db.execute("CREATE TABLE seen (k TEXT PRIMARY KEY, line INTEGER) WITHOUT ROWID")

    def first_lines(self, keys: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            marks = ",".join("?" * len(part))
            found.update(self._db.execute(f"SELECT k, line FROM seen WHERE k IN ({marks})", part))
        return found

    def add(self, pairs: list[tuple[str, int]]) -> None:
        self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?)", pairs)

    def close(self) -> None:
        self._db.close()


class CsvFileReader:
    """Reads one file whose bytes were already inspected (:class:`FileFacts`)."""

    def __init__(self, path: Path, facts: FileFacts, *, key: list[str], delimiter: str,
                 max_field_chars: int, origin_prefix: str) -> None:
        self.path = path
        self.facts = facts
        self.key = key
        self.delimiter = delimiter
        self.max_field_chars = max_field_chars
        self.unit = path.name
        self._prefix = origin_prefix
        self.header: list[str] = []

    def _origin(self, line: int) -> str:
        return f"{self._prefix}:line {line}"

    def batches(self, size: int, resume_after: int = 0) -> Iterator[RowBatch]:
        """Yield batches of at most ``size`` records; rows up to ``resume_after`` are skipped."""
        if self.facts.binary:
            raise FileRejected("the file contains NUL bytes: it looks like a spreadsheet or a binary "
                               "file, not a CSV text export")
        if self.facts.nul_line is not None:
            raise FileRejected(f"NUL byte on line {self.facts.nul_line}: a CSV text export never holds "
                               "one (a damaged or binary file?)")
        ledger = _KeyLedger()
        try:
            try:
                raw = open_regular(self.path)
            except UnsafeEntry as exc:
                raise FileRejected(str(exc)) from None
            with io.TextIOWrapper(raw, encoding=self.facts.encoding, errors="surrogateescape",
                                  newline="") as fh:
                yield from self._batches(fh, ledger, size, resume_after)
        finally:
            ledger.close()

    def _batches(self, fh: object, ledger: _KeyLedger, size: int, resume_after: int) -> Iterator[RowBatch]:
        lines = iter(fh)  # type: ignore[call-overload]
        first = next(lines, "")
        offset = 0  # blank lines before the header, unseen by the csv reader's line count
        while first and not first.strip():
            first = next(lines, "")
            offset += 1
        if not first.strip():
            raise FileRejected("the file is empty: no header line")
        delimiter = sniff_delimiter(first) if self.delimiter == "auto" else self.delimiter
        reader = csv.reader(chain([first], lines), delimiter=delimiter, strict=True)
        self.header = self._read_header(reader)
        batch = RowBatch()
        pending: list[tuple[SourceRecord, int]] = []
        prev_end = reader.line_num + offset
        while True:
            start = prev_end + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                prev_end = reader.line_num + offset
                if start > resume_after:
                    batch.problems.append(self._csv_error(start, exc, delimiter))
                continue
            prev_end = reader.line_num + offset
            item = self._row(row, start, prev_end, delimiter)
            if item is None:
                continue
            if isinstance(item, RowProblem):
                if start > resume_after:
                    batch.problems.append(item)
            else:
                pending.append((item, start))
            if len(pending) >= size or len(batch.problems) >= size:
                self._settle(pending, ledger, batch, resume_after)
                pending = []
                if batch.records or batch.problems:
                    batch.last_line = prev_end
                    yield batch
                    batch = RowBatch()
        self._settle(pending, ledger, batch, resume_after)
        batch.last_line = prev_end
        yield batch

    def _read_header(self, reader: Iterator[list[str]]) -> list[str]:
        try:
            header = [h.strip().lstrip("\ufeff") for h in next(reader)]
        except csv.Error as exc:
            raise FileRejected(f"the header line cannot be parsed: {exc}") from exc
        while header and not header[-1]:
            header.pop()
        if any(_SURROGATES.search(h) for h in header):
            raise FileRejected(f"the header line is not valid {self.facts.encoding}")
        seen: dict[str, int] = {}
        for i, name in enumerate(header, 1):
            if not name:
                raise FileRejected(f"header column {i} has no name; header: {header}")
            if name in seen:
                raise FileRejected(f"column {name!r} appears twice in the header (columns {seen[name]} "
                                   f"and {i})")
            seen[name] = i
        missing = [k for k in self.key if k not in seen]
        if missing:
            raise FileRejected(f"key column(s) {', '.join(map(repr, missing))} missing from the header; "
                               f"columns found: {', '.join(header)}")
        return header

    def _problem(self, line: int, reason: str, column: str | None = None,
                 row: list[str] | None = None, key: str | None = None) -> RowProblem:
        raw = None
        if row is not None:
            raw = {h: v[:_RAW_LIMIT] for h, v in zip(self.header, row, strict=False)}
        return RowProblem(origin=self._origin(line), reason=reason, key=key, column=column,
                          unit=self.unit, raw=raw)

    def _row(self, row: list[str], line: int, end: int, delimiter: str) -> SourceRecord | RowProblem | None:
        if not any(v.strip() for v in row):
            return None
        header = self.header
        for i, value in enumerate(row):
            if not value.isascii() and (bad := _SURROGATES.search(value)):
                column = header[i] if i < len(header) else None
                shown = bad.group().encode("utf-8", "surrogateescape").hex(" ")
                return self._problem(line, f"undecodable bytes ({shown}): not valid {self.facts.encoding}",
                                     column, row)
        if len(row) < len(header):
            return self._short_row(row, line, end, delimiter)
        if len(row) > len(header):
            extra = row[len(header):]
            if any(v.strip() for v in extra):
                shown = ", ".join(repr(v[:40]) for v in extra[:3])
                return self._problem(line, f"extra columns: {len(row)} fields but the header has "
                                     f"{len(header)} (unexpected {shown}); an unquoted "
                                     f"{delimiter!r} inside a value?", None, row)
            row = row[: len(header)]
        for name, value in zip(header, row, strict=True):
            if len(value) > self.max_field_chars:
                return self._problem(line, f"oversized field: {len(value)} characters, the limit is "
                                     f"{self.max_field_chars}", name, row)
        values = dict(zip(header, row, strict=True))
        parts = []
        for name in self.key:
            part = values[name].strip()
            if part.lower() in NULL_MARKERS:
                shown = "empty" if not part else f"{part!r}"
                return self._problem(line, f"key column {name!r} is {shown}", name, row)
            parts.append(part)
        return SourceRecord(key=join_key(parts), values=values, origin=self._origin(line), unit=self.unit)

    def _short_row(self, row: list[str], line: int, end: int, delimiter: str) -> RowProblem:
        header = self.header
        missing = header[len(row):]
        shown = ", ".join(repr(m) for m in missing[:5]) + (" ..." if len(missing) > 5 else "")
        counts = f"{len(row)} of {len(header)} fields (missing {shown})"
        others = [d for d in (";", ",", "\t") if d != delimiter and d in "".join(row)]
        if end >= self.facts.lines and not self.facts.ends_with_newline:
            reason = f"truncated last line: {counts}; was the file copied before it was complete?"
        elif len(row) == 1 and others:
            reason = (f"mixed delimiters: this row is separated by {others[0]!r} "
                      f"but the file uses {delimiter!r}")
        else:
            reason = f"missing columns: {counts}"
        return self._problem(line, reason, missing[0], row)

    def _csv_error(self, line: int, exc: csv.Error, delimiter: str) -> RowProblem:
        message = str(exc)
        if "field larger than field limit" in message:
            reason = f"oversized field: larger than {csv.field_size_limit()} characters"
        elif "unexpected end of data" in message:
            reason = "unterminated quoted field: a '\"' opened on this line is never closed"
        elif "NUL" in message:
            reason = "NUL byte in the line"
        else:
            reason = f"malformed CSV ({message}); quote values that contain {delimiter!r} or '\"'"
        return self._problem(line, reason)

    def _settle(self, pending: list[tuple[SourceRecord, int]], ledger: _KeyLedger, batch: RowBatch,
                resume_after: int) -> None:
        """Move pending records to the batch, turning repeated keys into problems."""
        if not pending:
            return
        earlier = ledger.first_lines([r.key for r, _ in pending])
        new: list[tuple[str, int]] = []
        for record, line in pending:
            first = earlier.get(record.key)
            if first is None:
                earlier[record.key] = line
                new.append((record.key, line))
                if line > resume_after:
                    batch.records.append(record)
            elif line > resume_after:
                batch.problems.append(RowProblem(
                    origin=record.origin, key=record.key, column=self.key[0], unit=self.unit,
                    reason=f"duplicate key {record.key!r}: already on line {first} of this file; "
                           f"only the first row is used", raw=dict(record.values)))
        ledger.add(new)
