"""SQL built from a mapping's ``[source]`` section, as pure functions over SQLAlchemy Core.

Every identifier comes from the mapping file, so each one is checked against the columns the
database reports and then quoted by SQLAlchemy; values are always bound parameters. Columns are
untyped (``NullType``) on purpose: values come back exactly as the driver gives them and cursor
values are compared in the database's own representation (SQLite stores dates as text).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from connector.errors import ConfigError

__all__ = [
    "WRITEBACK_PARAMS",
    "Relation",
    "after_position",
    "check_statement_params",
    "cursor_page",
    "expand_env",
    "flag_page",
    "key_cursor_page",
    "rows_with_keys",
    "scan_page",
]

WRITEBACK_PARAMS = ("key", "bsd_id", "readable_id", "status", "remote_status", "error", "updated_at")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(url: str) -> str:
    """Replace ``${VAR}``; a variable inside a longer URL is percent-encoded (a password with ``@``)."""
    whole = _ENV.fullmatch(url) is not None
    missing = [name for name in _ENV.findall(url) if name not in os.environ]
    if missing:
        raise ConfigError(f"source.url: environment variable(s) {', '.join(missing)} not set")
    return _ENV.sub(lambda m: os.environ[m[1]] if whole else quote(os.environ[m[1]], safe=""), url)


def _unknown(kind: str, name: str, known: Sequence[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"source.{kind}: unknown column {name!r} in {where}{hint}; columns: "
                       f"{', '.join(known)}")


@dataclass(frozen=True)
class Relation:
    """The rows a mapping reads: a table or a SELECT wrapped as a subquery, with its columns."""

    from_: sa.FromClause
    names: tuple[str, ...]
    label: str
    """How an origin names it: ``table enlevements`` or ``query of <mapping>``."""

    def col(self, name: str) -> sa.ColumnElement[Any]:
        return self.from_.c[name]

    def check(self, kind: str, names: Sequence[str]) -> None:
        for name in names:
            if name not in self.names:
                raise _unknown(kind, name, self.names, self.label)

    @classmethod
    def for_table(cls, qualified: str, names: Sequence[str]) -> Relation:
        schema, _, table = qualified.rpartition(".")
        from_ = sa.table(table, *(sa.column(n) for n in names), schema=schema or None)
        return cls(from_, tuple(names), f"table {qualified}")

    @classmethod
    def for_query(cls, query: str, names: Sequence[str], mapping: str) -> Relation:
        sub = sa.text(query).columns(*(sa.column(n) for n in names)).subquery("src")
        return cls(sub, tuple(names), f"query of {mapping}")


def after_position(cols: Sequence[sa.ColumnElement[Any]], values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """``(c1, c2, ...) > (v1, v2, ...)`` spelled out, since row-value comparison is not portable."""
    terms = []
    for i, (col, value) in enumerate(zip(cols, values, strict=True)):
        equal = [cols[j] == values[j] for j in range(i)]
        terms.append(sa.and_(*equal, col > value))
    return sa.or_(*terms)


def _select(rel: Relation) -> sa.Select[Any]:
    return sa.select(*(rel.col(n) for n in rel.names))


def cursor_page(rel: Relation, cursor: str, key: Sequence[str], safe: Any,
                position: tuple[Any, Sequence[Any]] | None, limit: int) -> sa.Select[Any]:
    """Rows with ``cursor > safe`` (and after ``position`` inside a poll), in cursor then key order."""
    cur = rel.col(cursor)
    keys = [rel.col(k) for k in key]
    query = _select(rel).where(cur.is_not(None) if safe is None else cur > safe)
    if position is not None:
        query = query.where(after_position([cur, *keys], [position[0], *position[1]]))
    return query.order_by(cur, *keys).limit(limit)


def null_cursor_page(rel: Relation, cursor: str, key: Sequence[str], position: Sequence[Any] | None,
                     limit: int) -> sa.Select[Any]:
    """Rows whose cursor is NULL, which ``cursor > safe`` never matches, in key order."""
    keys = [rel.col(k) for k in key]
    query = _select(rel).where(rel.col(cursor).is_(None))
    if position is not None:
        query = query.where(after_position(keys, position))
    return query.order_by(*keys).limit(limit)


def key_cursor_page(rel: Relation, cursor: str, key: Sequence[str], safe: Any,
                    position: Sequence[Any] | None, limit: int) -> sa.Select[Any]:
    """Key and cursor value of the rows at or below the safe point, in key order (reconciliation)."""
    keys = [rel.col(k) for k in key]
    query = sa.select(*keys, rel.col(cursor)).where(rel.col(cursor) <= safe)
    if position is not None:
        query = query.where(after_position(keys, position))
    return query.order_by(*keys).limit(limit)


def rows_with_keys(rel: Relation, key: Sequence[str], wanted: Sequence[Sequence[Any]]) -> sa.Select[Any]:
    """Whole rows whose key is one of ``wanted`` (each a tuple of key values), in key order."""
    keys = [rel.col(k) for k in key]
    where: sa.ColumnElement[bool]
    if len(keys) == 1:
        where = keys[0].in_([values[0] for values in wanted])
    else:
        where = sa.or_(*(sa.and_(*(c == v for c, v in zip(keys, values, strict=True))) for values in wanted))
    return _select(rel).where(where).order_by(*keys)


def flag_page(rel: Relation, flag: str, value: str | None, key: Sequence[str],
              position: Sequence[Any] | None, limit: int) -> sa.Select[Any]:
    """Rows the business system flagged for sending, in key order."""
    col = rel.col(flag)
    keys = [rel.col(k) for k in key]
    query = _select(rel).where(col.is_not(None) if value is None else col == value)
    if position is not None:
        query = query.where(after_position(keys, position))
    return query.order_by(*keys).limit(limit)


def scan_page(rel: Relation, key: Sequence[str], position: Sequence[Any] | None,
              limit: int) -> sa.Select[Any]:
    keys = [rel.col(k) for k in key]
    query = _select(rel)
    if position is not None:
        query = query.where(after_position(keys, position))
    return query.order_by(*keys).limit(limit)


def check_statement_params(statement: str, allowed: Sequence[str], where: str) -> sa.TextClause:
    """Compile a declared statement and refuse parameters the connector will not provide."""
    clause = sa.text(statement)
    names = list(clause.compile().params)
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ConfigError(f"{where}: unknown parameter(s) {', '.join(':' + n for n in unknown)}; "
                          f"available: {', '.join(':' + a for a in allowed)}")
    return clause
