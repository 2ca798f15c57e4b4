"""SQL source: a table or SELECT in the business database, read in key-ordered pages.

Pages are short statements (``ORDER BY ... LIMIT batch_size`` after the last position) rather
than one long server-side cursor: no transaction stays open while the engine works on a batch,
so the business application's writers are never blocked (SQLite) and MariaDB's streaming cursor
never pins the connection needed for child rows. Each mode's guarantees are in docs/sources.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.exc import SQLAlchemyError

from connector.errors import ConfigError, SourceError
from connector.sources.base import RowProblem, SourceBatch, SourceCheck, SourceRecord, WriteBack
from connector.sources.keys import join_key, split_key
from connector.sources.specs import SqlSourceSpec
from connector.sources.sql_cursor import CursorState
from connector.sources.sql_hash_store import HashStore
from connector.sources.sql_query import (
    WRITEBACK_PARAMS,
    Relation,
    check_statement_params,
    cursor_page,
    expand_env,
    flag_page,
    key_cursor_page,
    null_cursor_page,
    rows_with_keys,
    scan_page,
)
from connector.sources.sql_values import cursor_distance, decode_value, encode_value, row_hash, to_plain

__all__ = ["SqlSource"]

log = structlog.get_logger(__name__)

_Row = tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]
_FLAG_SEEN_LIMIT = 5000
"""Flagged rows remembered (until the write-back clears their flag) so they are handed over once;
beyond it a row is handed over again and the engine's payload-hash dedupe makes that a no-op."""
_RECONCILE_PAGE = 5000
"""Keys compared per reconciliation page (two narrow columns: cheap to read, bounded memory)."""


@dataclass
class _StoreAck:
    """Hashes (and key-map cursor values) to remember once the engine committed the batch, and
    generations to forget."""

    pairs: list[tuple[str, str]]
    generation: int
    prune_upto: int | None = None
    cursors: list[tuple[str, str]] = field(default_factory=list)


def _encode_cursor(value: Any) -> str:
    """A cursor value as the key map keeps it: its ``repr`` (type included, so ``1`` and ``"1"``
    differ; cheap, which matters when a reconciliation compares every row)."""
    return repr(to_plain(value))


def _validate(spec: SqlSourceSpec) -> None:
    problems = []
    if (spec.table is None) == (spec.query is None):
        problems.append("source: give exactly one of `table` or `query`")
    if spec.mode == "cursor" and not spec.cursor_column:
        problems.append("source.cursor_column: required when mode = \"cursor\"")
    if spec.mode == "flag" and not spec.flag_column:
        problems.append("source.flag_column: required when mode = \"flag\"")
    if spec.batch_size < 1:
        problems.append("source.batch_size: must be at least 1")
    if problems:
        raise ConfigError("invalid [source] section", problems=problems)


class SqlSource:
    """Reads one table or SELECT through any SQLAlchemy URL, in one of three change modes."""

    def __init__(self, spec: SqlSourceSpec, *, mapping_name: str, state_dir: Path,
                 clock: Callable[[], float] = time.time, base_dir: Path | None = None) -> None:
        _validate(spec)
        self.spec = spec
        self.name = mapping_name
        self._clock = clock
        url = sa.make_url(expand_env(spec.url))
        database = url.database
        if (url.get_backend_name() == "sqlite" and base_dir is not None and database
                and database != ":memory:" and not database.startswith("file:")
                and not Path(database).is_absolute()):
            # Like the CSV folder, a relative SQLite file lives beside the mapping file, not
            # wherever the daemon happens to be started.
            url = url.set(database=str(base_dir / database))
        if (url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:"
                and not url.database.startswith("file:") and not Path(url.database).exists()):
            # SQLite would silently create an empty database and then find no table in it.
            raise ConfigError(f"source.url: the SQLite database {url.database} does not exist")
        self.url_shown = url.render_as_string(hide_password=True)
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        key_params = [f"key_{k}" for k in spec.key]
        self._children = {
            name: check_statement_params(sql, ["parent_key", *key_params], f"source.children.{name}")
            for name, sql in spec.children.items()
        }
        self._writeback = None if spec.writeback is None else check_statement_params(
            spec.writeback.statement, [*WRITEBACK_PARAMS, *key_params], "source.writeback.statement")
        self._state_dir = state_dir
        self._store: HashStore | None = None
        self._relation: Relation | None = None

    # --- shape -------------------------------------------------------------------------------

    def relation(self) -> Relation:
        """The table or query, its columns checked against every column the mapping names."""
        if self._relation is None:
            spec = self.spec
            try:
                with self.engine.connect() as conn:
                    if spec.table is not None:
                        rel = self._table_relation(conn, spec.table)
                    else:
                        query = (spec.query or "").strip().rstrip(";")
                        probe = conn.execute(sa.text(f"SELECT * FROM ({query}) probe WHERE 1 = 0"))
                        rel = Relation.for_query(query, list(probe.keys()), self.name)
            except SQLAlchemyError as exc:
                raise self._error("cannot read the source's columns", exc) from exc
            rel.check("key", spec.key)
            rel.check("cursor_column", [spec.cursor_column or ""] if spec.mode == "cursor" else [])
            rel.check("flag_column", [spec.flag_column or ""] if spec.mode == "flag" else [])
            self._relation = rel
        return self._relation

    def _table_relation(self, conn: sa.Connection, qualified: str) -> Relation:
        schema, _, table = qualified.rpartition(".")
        inspector = sa.inspect(conn)
        if not inspector.has_table(table, schema=schema or None):
            tables = inspector.get_table_names(schema=schema or None)
            raise ConfigError(f"source.table: no table {qualified!r} in {self.url_shown}; tables: "
                              f"{', '.join(sorted(tables)) or '(none)'}")
        names = [c["name"] for c in inspector.get_columns(table, schema=schema or None)]
        watched = {"cursor": self.spec.cursor_column, "flag": self.spec.flag_column}.get(self.spec.mode)
        if watched:
            leading = [ix["column_names"][0] for ix in inspector.get_indexes(table, schema=schema or None)
                       if ix["column_names"]]
            leading += inspector.get_pk_constraint(table, schema=schema or None)["constrained_columns"][:1]
            if watched not in leading:
                log.warning("sql_poll_column_not_indexed", mapping=self.name, table=qualified,
                            column=watched, advice=f"CREATE INDEX ix_{table}_{watched} ON {qualified} "
                            f"({', '.join([watched, *self.spec.key])})")
        return Relation.for_table(qualified, names)

    def columns(self) -> list[str] | None:
        return list(self.relation().names)

    def _error(self, what: str, exc: SQLAlchemyError) -> SourceError:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return SourceError(f"{self.name}: {what} ({self.url_shown}): {reason}", mapping=self.name)

    # --- rows --------------------------------------------------------------------------------

    def _page(self, query: sa.Select[Any], *, children: bool = True) -> list[_Row]:
        try:
            with self.engine.connect() as conn:
                rows = [{k: to_plain(v) for k, v in r.items()} for r in conn.execute(query).mappings()]
                return [(values, self._fetch_children(conn, values) if children else {}) for values in rows]
        except SQLAlchemyError as exc:
            raise self._error(f"cannot read {self.relation().label}", exc) from exc

    def _key_page(self, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
        """Plain tuples (key values..., cursor value): the reconciliation's narrow pages."""
        try:
            with self.engine.connect() as conn:
                return [tuple(row) for row in conn.execute(query).all()]
        except SQLAlchemyError as exc:
            raise self._error(f"cannot read {self.relation().label}", exc) from exc

    def _fetch_children(self, conn: sa.Connection, values: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        if not self._children:
            return {}
        params = {f"key_{k}": values[k] for k in self.spec.key}
        params["parent_key"] = join_key([values[k] for k in self.spec.key])
        out = {}
        for name, clause in self._children.items():
            wanted = {p: params[p] for p in clause.compile().params}
            out[name] = [{k: to_plain(v) for k, v in r.items()}
                         for r in conn.execute(clause, wanted).mappings()]
        return out

    def _origin(self, values: Mapping[str, Any]) -> str:
        return f"{self.relation().label}, " + ", ".join(f"{k}={values[k]}" for k in self.spec.key)

    def _record(self, values: dict[str, Any], children: dict[str, list[dict[str, Any]]]
                ) -> SourceRecord | RowProblem:
        for k in self.spec.key:
            if values[k] is None or (isinstance(values[k], str) and not values[k].strip()):
                what = "NULL" if values[k] is None else "empty"
                return self._problem(values, k, f"key column {k!r} is {what}")
        key = join_key([values[k] for k in self.spec.key])
        return SourceRecord(key=key, values=values, origin=self._origin(values), children=children)

    def _problem(self, values: Mapping[str, Any], column: str, reason: str,
                 key: str | None = None) -> RowProblem:
        return RowProblem(origin=self._origin(values), reason=reason, key=key, column=column,
                          unit=self.relation().label, raw={c: str(v)[:200] for c, v in values.items()})

    # --- reading -----------------------------------------------------------------------------

    def read(self, checkpoint: Mapping[str, Any] | None) -> Iterator[SourceBatch]:
        readers = {"cursor": self._read_cursor, "flag": self._read_flag, "scan": self._read_scan}
        return readers[self.spec.mode](checkpoint)

    def _read_cursor(self, checkpoint: Mapping[str, Any] | None) -> Iterator[SourceBatch]:
        rel, spec = self.relation(), self.spec
        cursor = spec.cursor_column or ""
        state = CursorState.from_checkpoint(checkpoint)
        before = state.to_checkpoint()
        store = self._hash_store()
        if state.epoch is None or state.epoch != store.epoch():
            state.epoch = store.start_epoch()  # remembered rows no longer match: hand over again
            # The key map went with the hashes: the next reconciliation rebuilds it.
            state.rec_seed, state.rec_pos, state.rec_at = state.safe is not None, None, None
        full = state.position is None
        started = self._clock()
        highest = state.highest()
        if full:
            for batch in self._null_cursor_batches(store, state.generation):
                batch.checkpoint = state.to_checkpoint()
                yield batch
        while True:
            rows = self._page(cursor_page(rel, cursor, spec.key, state.safe, state.position, spec.batch_size))
            batch = self._changed(self._hashed(rows), store, state.generation)
            for values, _ in rows:
                highest = values[cursor] if highest is None else max(highest, values[cursor])
            if rows:
                last = rows[-1][0]
                state.position = (last[cursor], [last[k] for k in spec.key])
            if len(rows) < spec.batch_size:
                batch.ack_token.prune_upto = state.finish_poll(
                    started=started, ended=self._clock(), highest=highest, lag=spec.lag_seconds, full=full)
                break
            if batch.records or batch.problems:
                batch.checkpoint = state.to_checkpoint()
                yield batch
        if spec.reconcile_seconds <= 0:  # the key map is not kept: rebuild it if turned on again
            state.rec_seed, state.rec_pos = True, None
        elif state.reconcile_due(self._clock(), spec.reconcile_seconds):
            if batch.records or batch.problems or batch.ack_token.prune_upto is not None:
                batch.checkpoint = state.to_checkpoint()
                yield batch  # committed (and pruned) before the key map is compared
            yield from self._reconcile(state, store)  # its last batch carries the checkpoint
            return
        batch.checkpoint = state.to_checkpoint()
        if batch.records or batch.problems or batch.checkpoint != before:
            yield batch

    def _reconcile(self, state: CursorState, store: HashStore) -> Iterator[SourceBatch]:
        """Compare every row at or below the safe point (key, cursor value) with the key map.

        A row the map does not know, or whose cursor value differs, was committed below the safe
        point after the cursor had moved past it (a transaction longer than the lag): it is read
        whole and handed over, and reported as found late. Pages of ``_RECONCILE_PAGE`` keys, rows
        read ``batch_size`` at a time; the position is kept in the checkpoint so that an
        interruption resumes (at the page being compared) at the next poll.
        """
        rel, spec = self.relation(), self.spec
        cursor = spec.cursor_column or ""
        previous = state.rec_at
        if state.safe is None:  # every row is above the safe point and read by each poll
            state.rec_at, state.rec_pos = self._clock(), None
            yield SourceBatch(records=[], checkpoint=state.to_checkpoint(),
                              ack_token=_StoreAck([], state.generation))
            return
        compared = found = 0
        while True:
            page = self._key_page(key_cursor_page(rel, cursor, spec.key, state.safe, state.rec_pos,
                                                  _RECONCILE_PAGE))
            compared += len(page)
            keyed = [(join_key(values), _encode_cursor(value), values)
                     for *values, value in page if None not in values]
            known = store.cursors([k for k, _, _ in keyed])
            wanted = [values for k, c, values in keyed if known.get(k) != c]
            for i in range(0, len(wanted), spec.batch_size):
                rows = self._page(rows_with_keys(rel, spec.key, wanted[i : i + spec.batch_size]))
                batch = self._changed(self._hashed(rows), store, state.generation, every_cursor=True)
                if not state.rec_seed:
                    batch.found_late = len(batch.records)
                    for record in batch.records:
                        self._log_late(record, state.safe, previous)
                found += len(batch.records)
                batch.checkpoint = state.to_checkpoint()  # still at this page: redone if interrupted
                yield batch
            if len(page) == _RECONCILE_PAGE:
                state.rec_pos = [to_plain(v) for v in page[-1][:-1]]
                continue
            if state.rec_seed or found:
                log.info("sql_reconciled", mapping=self.name, rows_compared=compared,
                         handed_over=found, key_map_built=state.rec_seed)
            state.rec_at, state.rec_pos, state.rec_seed = self._clock(), None, False
            yield SourceBatch(records=[], checkpoint=state.to_checkpoint(),
                              ack_token=_StoreAck([], state.generation))
            return

    def _log_late(self, record: SourceRecord, safe: Any, previous: float | None) -> None:
        cursor = self.spec.cursor_column or ""
        value = record.values.get(cursor)
        log.warning(
            "sql_row_found_late", mapping=self.name, key=record.key, cursor_value=str(value),
            safe_point=str(safe), behind_safe_point=cursor_distance(safe, value),
            missed_for_at_most_s=None if previous is None else round(self._clock() - previous, 1),
            advice=f"its transaction committed after the cursor had passed {cursor}={value}; "
                   f"raise lag_seconds (now {self.spec.lag_seconds:g}) above the longest write "
                   f"transaction to read such rows without waiting for the reconciliation")

    def _null_cursor_batches(self, store: HashStore, generation: int) -> Iterator[SourceBatch]:
        """Rows with a NULL cursor, as rejections a person sees, instead of rows silently never read.

        Polls where the business system leaves ``updated_at`` NULL until a row's first update
        would otherwise lose every row never updated. The row's key is kept, so once its cursor
        gets a value it is read like any other and the rejection clears.
        """
        rel, spec = self.relation(), self.spec
        cursor = spec.cursor_column or ""
        reason = (f"cursor column {cursor!r} is NULL: cursor mode cannot see when this row changes, "
                  f"so it is not sent; give {cursor} a value, or read through a query that uses "
                  f"COALESCE({cursor}, <creation column>) or leaves such rows out")
        position: list[Any] | None = None
        while True:
            # Child rows are not read: these rows only become rejections.
            query = null_cursor_page(rel, cursor, spec.key, position, spec.batch_size)
            rows = self._page(query, children=False)
            items: list[tuple[SourceRecord | RowProblem, str]] = []
            for values, _ in rows:
                item = self._record(values, {})
                if isinstance(item, SourceRecord):
                    item = self._problem(values, cursor, reason, key=item.key)
                items.append((item, row_hash(values, {})))
            batch = self._changed(items, store, generation)
            if batch.problems:
                yield batch
            if len(rows) < spec.batch_size:
                return
            position = [rows[-1][0][k] for k in spec.key]

    def _changed(self, items: list[tuple[SourceRecord | RowProblem, str]], store: HashStore,
                 generation: int, *, every_cursor: bool = False) -> SourceBatch:
        """Records and problems whose content differs from what was last handed over.

        In cursor mode the acknowledgement also records each handed-over record's cursor value in
        the key map (with ``every_cursor``, every record's, handed over or not: the reconciliation
        must not ask again about a row that only lacked its map entry).
        """
        idents = [i.key if isinstance(i, SourceRecord) else i.origin for i, _ in items]
        known = store.lookup(idents)
        ack = _StoreAck([], generation)
        batch = SourceBatch(records=[], ack_token=ack)
        keep_map = self.spec.mode == "cursor" and self.spec.reconcile_seconds > 0
        cursor = self.spec.cursor_column if keep_map else None
        for (item, digest), ident in zip(items, idents, strict=True):
            changed = known.get(ident) != digest
            if changed:
                if isinstance(item, SourceRecord):
                    batch.records.append(item)
                else:
                    batch.problems.append(item)
                known[ident] = digest  # the same key twice in one page: hand over once
                ack.pairs.append((ident, digest))
            if cursor and isinstance(item, SourceRecord) and (changed or every_cursor):
                ack.cursors.append((ident, _encode_cursor(item.values[cursor])))
        return batch

    def _hashed(self, rows: list[_Row]) -> list[tuple[SourceRecord | RowProblem, str]]:
        return [(self._record(v, c), row_hash(v, c)) for v, c in rows]

    def _read_flag(self, checkpoint: Mapping[str, Any] | None) -> Iterator[SourceBatch]:
        rel, spec = self.relation(), self.spec
        previous: dict[str, str] = dict((checkpoint or {}).get("seen", {}))
        raw_pos = (checkpoint or {}).get("pos")
        position = None if raw_pos is None else [decode_value(v) for v in raw_pos]
        current: dict[str, str] = {}
        while True:
            rows = self._page(flag_page(rel, spec.flag_column or "", spec.flag_value, spec.key, position,
                                        spec.batch_size))
            batch = SourceBatch(records=[])
            for values, children in rows:
                item = self._record(values, children)
                ident = item.key if isinstance(item, SourceRecord) else item.origin
                digest = row_hash(values, children)
                if previous.get(ident) != digest:
                    (batch.records if isinstance(item, SourceRecord) else batch.problems).append(item)  # type: ignore[arg-type]
                current[ident] = digest
            if rows:
                position = [rows[-1][0][k] for k in spec.key]
            done = len(rows) < spec.batch_size
            seen = current if done else {**previous, **current}
            batch.checkpoint = {
                "v": 1, "seen": dict(list(seen.items())[-_FLAG_SEEN_LIMIT:]),
                "pos": None if done or position is None else [encode_value(v) for v in position],
            }
            if batch.records or batch.problems or (done and batch.checkpoint != dict(checkpoint or {})):
                yield batch
            if done:
                return

    def _hash_store(self) -> HashStore:
        if self._store is None:
            self._store = HashStore(self._state_dir / f"{self.name}.{self.spec.mode}.sqlite")
        return self._store

    def _read_scan(self, checkpoint: Mapping[str, Any] | None) -> Iterator[SourceBatch]:
        rel, spec = self.relation(), self.spec
        store = self._hash_store()
        epoch = (checkpoint or {}).get("epoch")
        raw_pos = (checkpoint or {}).get("pos")
        position = None if raw_pos is None else [decode_value(v) for v in raw_pos]
        if epoch is None or epoch != store.epoch():
            epoch, position = store.start_epoch(), None
        while True:
            rows = self._page(scan_page(rel, spec.key, position, spec.batch_size))
            batch = self._changed(self._hashed(rows), store, 0)
            if rows:
                position = [rows[-1][0][k] for k in spec.key]
            done = len(rows) < spec.batch_size
            batch.checkpoint = {"v": 1, "epoch": epoch, "pos": None if done or position is None
                                else [encode_value(v) for v in position]}
            if batch.records or batch.problems or (done and batch.checkpoint != dict(checkpoint or {})):
                yield batch
            if done:
                return

    def acknowledge(self, batch: SourceBatch) -> None:
        ack = batch.ack_token
        if isinstance(ack, _StoreAck) and (ack.pairs or ack.cursors or ack.prune_upto is not None):
            self._hash_store().save(ack.pairs, ack.generation, ack.prune_upto, ack.cursors)

    # --- writing back ------------------------------------------------------------------------

    def write_back(self, updates: Sequence[WriteBack]) -> None:
        """Run the declared statement once per update, all in one transaction."""
        if self._writeback is None or not updates:
            return
        rows = self.writeback_params(updates)
        try:
            with self.engine.begin() as conn:
                conn.execute(self._writeback, rows)
        except SQLAlchemyError as exc:
            what = f"write-back of {len(rows)} status(es) failed, nothing was written"
            raise self._error(what, exc) from exc

    def check(self) -> SourceCheck:
        """What ``td-connector check`` says of this source (see connector.sources.checks)."""
        from connector.sources.checks import check_sql_source

        return check_sql_source(self)

    def writeback_params(self, updates: Sequence[WriteBack]) -> list[dict[str, Any]]:
        """The bound parameters of the write-back statement, one dict per update (all text)."""
        assert self._writeback is not None
        wanted = list(self._writeback.compile().params)
        rows = []
        for update in updates:
            parts = split_key(update.key)
            params: dict[str, Any] = {
                "key": update.key, "bsd_id": update.bsd_id, "readable_id": update.readable_id,
                "status": update.status, "remote_status": update.remote_status, "error": update.error,
                "updated_at": update.updated_at,
            }
            for i, column in enumerate(self.spec.key):
                params[f"key_{column}"] = parts[i] if len(parts) == len(self.spec.key) else None
            rows.append({p: params[p] for p in wanted})
        return rows

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        self.engine.dispose()
