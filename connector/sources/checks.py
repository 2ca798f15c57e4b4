"""``td-connector check`` opens every source for real, the way a pass would.

CSV drop folder: it exists, can be listed, the connector can move files out of it and write into
``processed/``, ``rejected/`` and ``receipts/``, and the newest export's header is read so that the
mapping's columns are checked against it. SQL: the write-back statement runs against the real
table with the parameters a pass would bind (all text, as the engine sends them: PostgreSQL must
accept them for the columns' types) inside a transaction that is rolled back, and the key and
cursor columns are looked up among the table's indexes.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from connector.sources.base import SourceCheck, WriteBack
from connector.sources.csv_rows import CsvFileReader, FileRejected
from connector.sources.csv_text import inspect_file
from connector.sources.keys import join_key
from connector.sources.safe_files import UnsafeEntry, scan
from connector.sources.sql_values import to_plain

if TYPE_CHECKING:
    from connector.sources.csv_folder import CsvFolderSource
    from connector.sources.sql_source import SqlSource

__all__ = ["check_csv_folder", "check_sql_source"]


def _writable(folder: Path) -> str | None:
    """None when a file can be created (and removed) in ``folder``, else why not."""
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".td-connector-check-")
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    os.unlink(name)
    return None


def check_csv_folder(source: CsvFolderSource) -> SourceCheck:
    result = SourceCheck()
    folder, spec = Path(os.path.normpath(source.folder)), source.spec
    if not folder.exists():
        result.fail(f"drop folder {folder} does not exist: create it, or correct source.folder")
        return result
    if not folder.is_dir():
        result.fail(f"drop folder {folder} is not a folder: correct source.folder")
        return result
    try:
        matching, refused = scan(folder, spec.pattern)  # regular files only: links are never followed
    except OSError as exc:
        result.fail(
            f"drop folder {folder} cannot be read ({exc.strerror or exc}): let the connector's user "
            "read it (chown/chmod)"
        )
        return result
    problem = _writable(folder)
    if problem:
        result.fail(
            f"drop folder {folder} is not writable ({problem}): files could not be moved out of it; "
            "let the connector's user write to it"
        )
    for label, name in (("processed", spec.processed_folder), ("rejected", spec.rejected_folder),
                        ("receipts", spec.receipts_folder)):
        try:
            sub = Path(os.path.normpath(source._sub(name)))
        except UnsafeEntry as exc:  # a symbolic link, or a path leading out of the drop folder
            result.fail(f"{label} folder: {exc}")
            continue
        if sub.exists() and not sub.is_dir():
            result.fail(f"{label} folder {sub} is a file, not a folder: remove it or change "
                        f"source.{label}_folder")
        elif sub.is_dir() and (problem_sub := _writable(sub)):
            result.fail(f"{label} folder {sub} is not writable ({problem_sub}): let the connector's "
                        "user write to it")
    for entry in refused:
        result.warn(f"{entry.path.name} in {folder} will be refused unread: {entry.reason}")
    matching.sort(key=lambda e: e.stat(follow_symlinks=False).st_mtime_ns)
    if not any(f.level == "fail" for f in result.findings):
        result.ok(f"drop folder {folder}: readable, writable; {len(matching)} file(s) waiting")
    if not matching:
        result.warn(f"no file matching {spec.pattern!r} in {folder} yet: the mapping's columns are "
                    "checked against the first export's header when one is there")
        return result
    newest = Path(matching[-1].path)
    try:
        facts = inspect_file(newest, spec.encoding)
        reader = CsvFileReader(newest, facts, key=spec.key, delimiter=spec.delimiter,
                               max_field_chars=spec.max_field_chars, origin_prefix=newest.name)
        with closing(reader.batches(1)) as batches:  # type: ignore[type-var]
            next(batches, None)
    except FileRejected as exc:
        result.fail(f"the newest file {newest.name} would be rejected: {exc}")
        return result
    except OSError as exc:
        result.fail(f"the newest file {newest.name} cannot be read ({exc.strerror or exc})")
        return result
    result.columns = reader.header
    result.where = f"header of {newest.name}"
    return result


def check_sql_source(source: SqlSource) -> SourceCheck:
    result = SourceCheck()
    spec = source.spec
    relation = source.relation()  # raises ConfigError/SourceError: build_runtime already read it
    result.columns = list(relation.names)
    result.where = relation.label
    result.ok(f"{relation.label} in {source.url_shown}: {len(relation.names)} column(s)")
    if spec.table is not None:
        _check_indexes(source, spec.table, result)
    if spec.writeback is not None:
        _check_writeback(source, relation, result)
    return result


def _check_indexes(source: SqlSource, qualified: str, result: SourceCheck) -> None:
    schema, _, table = qualified.rpartition(".")
    spec = source.spec
    try:
        with source.engine.connect() as conn:
            inspector = sa.inspect(conn)
            found = inspector.get_indexes(table, schema=schema or None)
            indexes: list[list[str | None]] = [list(ix["column_names"]) for ix in found]
            pk = inspector.get_pk_constraint(table, schema=schema or None)["constrained_columns"]
            indexes.append(list(pk))
            uniques = inspector.get_unique_constraints(table, schema=schema or None)
            indexes += [list(u["column_names"]) for u in uniques]
    except (SQLAlchemyError, NotImplementedError) as exc:
        result.warn(f"{qualified}: indexes could not be listed ({exc})")
        return
    leading = {cols[0] for cols in indexes if cols}
    watched = {"cursor": spec.cursor_column, "flag": spec.flag_column}.get(spec.mode)
    for role, column in (("key", spec.key[0]), (f"{spec.mode} column", watched)):
        if not column:
            continue
        if column in leading:
            result.ok(f"{qualified}: the {role} {column!r} is indexed")
        else:
            result.warn(
                f"{qualified}: the {role} {column!r} is not indexed: every pass scans the table; "
                f"CREATE INDEX ix_{table}_{column} ON {qualified} ({column})"
            )


def _check_writeback(source: SqlSource, relation: object, result: SourceCheck) -> None:
    """Run the write-back statement for one real key, then roll it back."""
    spec = source.spec
    statement = source._writeback
    assert statement is not None
    from connector.sources.sql_query import Relation

    assert isinstance(relation, Relation)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    try:
        with source.engine.connect() as conn:
            first = conn.execute(
                sa.select(*(relation.col(k) for k in spec.key)).select_from(relation.from_).limit(1)
            ).first()
            key = join_key([to_plain(v) for v in first]) if first is not None else "td-connector-check"
            update = WriteBack(key=key, unit=None, bsd_id="check", readable_id="BSD-00000000-CHECK",
                               status="synced", remote_status="SEALED", error="td-connector check",
                               updated_at=now)
            try:  # in the transaction the SELECT opened
                conn.execute(statement, source.writeback_params([update]))
            finally:
                conn.rollback()
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        result.fail(f"the write-back statement fails against {source.url_shown}: {reason}: fix "
                    "source.writeback.statement (every parameter is sent as text)")
        return
    sample = f"for key {key!r}" if first is not None else "(table empty: a key that matches nothing)"
    result.ok(f"write-back statement runs against {source.url_shown} {sample}, rolled back")
