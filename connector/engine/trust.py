"""May this state store create BSDs? Markers, evidence from the source, and the push step's guard.

A create is only safe from the store that knows every BSD already made for the source's records.
Three things tell that the store is not that one (see ``connector.state.identity``):

- a marker (beside a SQLite store, in a CSV source's receipts folder) names another store, or a
  later generation of this one (an older copy put back);
- a record new to the store already carries a BSD id in its source (the SQL write-back column, the
  CSV receipt of its file): the store that sent it is gone;
- the store file was deleted or replaced, or its stamp row changed, while the process runs.

Then push sends no create until ``td-connector rebuild-state`` adopted the existing BSDs; every
other step goes on. A brand-new install (no marker, nothing written back) is trusted at once.
"""

from __future__ import annotations

import csv
import json
import re
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from connector.engine.context import Binding, Pipeline
from connector.sources.csv_folder import CsvFolderSource
from connector.sources.receipts import receipt_path
from connector.sources.specs import CsvSourceSpec, SqlSourceSpec
from connector.state.identity import (
    SOURCE_MARKER,
    Identity,
    bump_generation,
    ensure_identity,
    lost_while_running,
    mark_trusted,
    mark_untrusted,
    mark_untrusted_in,
    read_marker,
    store_marker_path,
    write_marker,
)
from connector.state.models import Record
from connector.state.store import StateStore

__all__ = [
    "WHAT_TO_DO",
    "before_creates",
    "carried_bsd_ids",
    "creates_refused",
    "marker_paths",
    "note_carried_bsd_ids",
    "stamp_markers",
]

WHAT_TO_DO = (
    "no BSD is created until the state is rebuilt from Trackdéchets: stop the connector, run "
    "`td-connector rebuild-state --dry-run` to see what it would adopt, then `td-connector "
    "rebuild-state`; ingest, tracking and write-back go on meanwhile"
)

_reported: weakref.WeakKeyDictionary[StateStore, set[str]] = weakref.WeakKeyDictionary()


def _report_once(store: StateStore, log: Any, reason: str) -> None:
    seen = _reported.setdefault(store, set())
    if reason not in seen:
        seen.add(reason)
        log.error("state_store_not_trusted", detected=reason, what_to_do=WHAT_TO_DO)


# --- markers ---------------------------------------------------------------------------------


def receipts_folder(binding: Binding) -> Path | None:
    source, spec = binding.source, getattr(binding.mapping, "source", None)
    if not isinstance(source, CsvFolderSource) or not isinstance(spec, CsvSourceSpec):
        return None
    folder = Path(spec.receipts_folder)
    return folder if folder.is_absolute() else source.folder / folder


def marker_paths(pipeline: Pipeline) -> list[Path]:
    """Beside a SQLite store, and in each CSV source's receipts folder."""
    paths = {store_marker_path(pipeline.store)}
    for binding in pipeline.bindings:
        folder = receipts_folder(binding)
        paths.add(folder / SOURCE_MARKER if folder is not None else None)
    return sorted(p for p in paths if p is not None)


def _mismatch(pipeline: Pipeline, identity: Identity) -> str | None:
    for path in marker_paths(pipeline):
        marker = read_marker(path)
        if marker is None:
            continue
        if not marker.identity:
            return f"the marker {path} cannot be read"
        if marker.identity != identity.identity:
            return (
                f"{path} names state store {marker.identity[:12]}, but this one is "
                f"{identity.identity[:12]}: the state store was deleted, replaced, or belongs to "
                "another installation"
            )
        if marker.generation > identity.generation:
            return (
                f"{path} is at generation {marker.generation} of this state store, the store "
                f"itself at {identity.generation}: it is an older copy (a backup put back?)"
            )
    return None


def stamp_markers(pipeline: Pipeline, identity: Identity) -> None:
    url = pipeline.store.engine.url.render_as_string(hide_password=True)
    for path in marker_paths(pipeline):
        try:
            write_marker(path, identity, state_url=url)
        except FileNotFoundError:  # its drop folder is missing: ingest fails for it, and says so
            continue


# --- the guard -------------------------------------------------------------------------------


def creates_refused(pipeline: Pipeline) -> str | None:
    """Why this store may not create now (logged once as an ERROR), or None when it may."""
    store = pipeline.store
    reason = lost_while_running(store)
    if reason is None:
        identity = ensure_identity(store)
        if identity.trusted is False:
            reason = identity.reason or "the state store is marked as not trusted"
        else:
            reason = _mismatch(pipeline, identity)
            if reason is not None:
                mark_untrusted(store, reason)
            elif identity.trusted is None:
                now = mark_trusted(store, rebuilt=False)  # only if still undecided
                if now.trusted is True:
                    pipeline.log.info(
                        "state_store_trusted", identity=identity.identity[:12], how="new install"
                    )
                else:
                    reason = now.reason or "the state store is marked as not trusted"
    if reason is not None:
        _report_once(store, pipeline.log, reason)
    return reason


def before_creates(pipeline: Pipeline) -> None:
    """Before a push pass sends its first create: a new generation, in the store then the markers.

    In that order, a crash in between leaves markers behind the store (harmless); only a store
    behind its markers is an older copy.
    """
    stamp_markers(pipeline, bump_generation(pipeline.store))


# --- evidence from the source ----------------------------------------------------------------

_WRITEBACK_COLUMN = re.compile(r"[\"`\[]?([A-Za-z_][\w$]*)[\"`\]]?\s*=\s*:(?:bsd_id|readable_id)\b")


def _writeback_columns(spec: SqlSourceSpec) -> list[str]:
    """Columns the write-back statement fills with ``:bsd_id`` / ``:readable_id`` (``col = :bsd_id``)."""
    if spec.writeback is None:
        return []
    return _WRITEBACK_COLUMN.findall(spec.writeback.statement)


def _values(raw: str | None) -> dict[str, Any]:
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    values = parsed.get("values") if isinstance(parsed, dict) else None
    return values if isinstance(values, dict) else {}


def _receipt_ids(path: Path) -> dict[str, str]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = csv.DictReader(fh, delimiter=";")
            return {row["key"]: row["bsd_id"] for row in rows if row.get("bsd_id")}
    except (OSError, KeyError, csv.Error):
        return {}


def carried_bsd_ids(
    binding: Binding, records: Iterable[tuple[str, str | None, str | None]]
) -> dict[str, str]:
    """Key → BSD id the source already holds for these (key, unit, raw JSON) records."""
    spec = getattr(binding.mapping, "source", None)
    found: dict[str, str] = {}
    if isinstance(spec, SqlSourceSpec):
        columns = _writeback_columns(spec)
        for key, _unit, raw in records:
            values = _values(raw)
            for column in columns:
                value = values.get(column)
                if value is not None and str(value).strip():
                    found[key] = str(value).strip()
                    break
        return found
    folder = receipts_folder(binding)
    if folder is None:
        return found
    by_unit: dict[str, dict[str, str]] = {}
    for key, unit, _raw in records:
        if unit is None:
            continue
        if unit not in by_unit:
            by_unit[unit] = _receipt_ids(receipt_path(folder, unit))
        if key in by_unit[unit]:
            found[key] = by_unit[unit][key]
    return found


def note_carried_bsd_ids(
    session: Session,
    binding: Binding,
    records: Sequence[tuple[str, str | None, str | None]],
    log: Any,
    store: StateStore,
) -> int:
    """Records new to the store that their source says were sent already: the store lost them.

    Runs in the transaction that stores these records (the identity row must exist: see
    :func:`ensure_identity`), so they are committed together with the store's "not trusted"
    mark and no push pass can claim them as creates in between. Their write-back waits for
    ``rebuild-state``: it would replace the BSD id the source holds with nothing.
    """
    carried = carried_bsd_ids(binding, records)
    if not carried:
        return 0
    session.flush()
    keys = list(carried)
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        session.execute(
            update(Record)
            .where(Record.mapping == binding.mapping.name, Record.record_key.in_(chunk),
                   Record.bsd_id.is_(None))
            .values(writeback_due=False)
            .execution_options(synchronize_session=False)
        )
    sample = ", ".join(f"{k} → {v}" for k, v in list(carried.items())[:5])
    reason = (
        f"{len(carried)} record(s) of mapping {binding.mapping.name} new to this state store already "
        f"carry a BSD id in their source ({sample}): the state store that sent them was lost"
    )
    mark_untrusted_in(session, reason)
    _report_once(store, log, reason)
    return len(carried)
