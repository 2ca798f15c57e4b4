"""Reading a mapping's reference tables (``[lookups.x]``): a CSV file or an SQL query.

This is the I/O half of lookups; the pure half (indexing, reading a value, the fingerprint that
makes records re-evaluated when a table changes) is ``connector.mapping.lookups``. Tables are read
again at every ingest pass: they are small (clients, sites, transporters), and a correction made
only in the reference table must reach the BSDs that used it.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from connector.errors import SourceError
from connector.mapping.lookups import LookupTable, table_from_rows
from connector.mapping.spec import LookupSpec
from connector.sources.csv_text import inspect_file, sniff_delimiter
from connector.sources.sql_query import expand_env
from connector.sources.sql_values import to_plain

__all__ = ["load_lookups"]


def load_lookups(specs: Mapping[str, LookupSpec], *, base_dir: Path) -> dict[str, LookupTable]:
    """Every table, or one SourceError naming each lookup that could not be read and why."""
    tables: dict[str, LookupTable] = {}
    problems: list[str] = []
    for name, spec in specs.items():
        try:
            tables[name] = _load(name, spec, base_dir)
        except (OSError, ValueError, SQLAlchemyError, csv.Error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
            reason = str(reason)
            problems.append(reason if reason.startswith("lookup") else f'lookup "{name}": {reason}')
    if problems:
        raise SourceError("; ".join(problems))
    return tables


def _load(name: str, spec: LookupSpec, base_dir: Path) -> LookupTable:
    if spec.file is not None:
        return _load_csv(name, spec, base_dir / spec.file)
    assert spec.url is not None  # the compiler checked it (with the query)
    return _load_sql(name, spec, base_dir)


def _load_csv(name: str, spec: LookupSpec, path: Path) -> LookupTable:
    if not path.is_file():
        raise ValueError(f'lookup "{name}": file {path} does not exist')
    facts = inspect_file(path, spec.encoding)
    with path.open(encoding=facts.encoding, errors="replace", newline="") as handle:
        header = handle.readline()
        delimiter = sniff_delimiter(header) if spec.delimiter == "auto" else spec.delimiter
        handle.seek(0)
        reader = csv.DictReader(handle, delimiter=delimiter)
        columns = [c.strip() for c in reader.fieldnames or []]
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    return table_from_rows(name, spec.key, rows, columns, path.name)


def _load_sql(name: str, spec: LookupSpec, base_dir: Path) -> LookupTable:
    url = sa.make_url(expand_env(spec.url or ""))
    database = url.database
    if url.get_backend_name() == "sqlite" and database and database != ":memory:" \
            and not database.startswith("file:"):
        path = Path(database) if Path(database).is_absolute() else base_dir / database
        if not path.exists():
            raise ValueError(f'lookup "{name}": the SQLite database {path} does not exist')
        url = url.set(database=str(path))
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            result = conn.execute(sa.text(spec.query or ""))
            columns = list(result.keys())
            rows: list[dict[str, Any]] = [
                {k: to_plain(v) for k, v in zip(columns, row, strict=True)} for row in result
            ]
    finally:
        engine.dispose()
    return table_from_rows(name, spec.key, rows, columns, f'the query of lookup "{name}"')
