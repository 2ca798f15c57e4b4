"""Lookup tables read again at every ingest pass; records re-mapped when a table changed.

A correction made only in a reference table (a client's e-mail in ``clients``) does not touch the
business rows, so no source reports those rows as changed: here the tables' fingerprint is
compared with the one of the previous pass, and on a change every record of the mapping that is
not finished is mapped again from the values the state store kept. Its payload hash then decides,
as for any change, whether an update is due (before signature) or nothing is to do. A record held
as a conflict is left alone: a key found on several rows keeps the values read before the clash,
and re-mapping those would release it with stale data; the source's next change settles it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from connector.engine.context import Binding, Pipeline
from connector.errors import SourceError
from connector.mapping.compiled import CompiledMapping
from connector.sources.base import SourceBatch, SourceRecord
from connector.sources.lookups import load_lookups
from connector.state.models import Record, RecordState

__all__ = ["load_binding_lookups", "lookup_problems", "refresh_lookups"]

_PAGE = 500


def load_binding_lookups(binding: Binding) -> bool:
    """Read the binding's lookup tables into its mapping; False when it has none."""
    mapping = binding.mapping
    if not isinstance(mapping, CompiledMapping) or not mapping.spec.lookups:
        return False
    tables = load_lookups(mapping.spec.lookups, base_dir=Path(mapping.path).parent)
    binding.mapping = mapping.with_tables(tables)
    return True


def lookup_problems(binding: Binding) -> list[str]:
    """Load the tables at start; what is wrong with them, as configuration problems."""
    try:
        if not load_binding_lookups(binding):
            return []
    except SourceError as exc:
        return [f"{binding.mapping.path}: {exc}"]
    mapping = binding.mapping
    assert isinstance(mapping, CompiledMapping)
    return mapping.check_lookups(mapping.tables)


def refresh_lookups(pipeline: Pipeline, binding: Binding) -> Counter[str]:
    """Reload the tables; when their content changed since the last pass, re-map stored records."""
    from connector.engine.ingest import store_batch  # ingest calls this module first

    counts: Counter[str] = Counter()
    if not load_binding_lookups(binding):
        return counts
    mapping = binding.mapping
    assert isinstance(mapping, CompiledMapping)
    marker = f"{mapping.name}#lookups"
    fingerprint = mapping.lookup_fingerprint
    previous = pipeline.store.get_checkpoint(marker)
    if previous is not None and previous.get("fingerprint") == fingerprint:
        return counts
    last_id = 0
    while True:
        with pipeline.store.session() as session:
            rows = list(session.scalars(
                select(Record).where(Record.mapping == mapping.name, Record.id > last_id,
                                     Record.state.not_in((RecordState.DONE, RecordState.CONFLICT)),
                                     Record.source_values.is_not(None),
                                     Record.payload_hash.not_like("conflict:%"))
                .order_by(Record.id).limit(_PAGE)))
            session.expunge_all()
        if not rows:
            break
        last_id = rows[-1].id
        records = [_stored_record(row) for row in rows]
        batch = SourceBatch([r for r in records if r is not None])
        counts.update(store_batch(pipeline.store, binding, batch, pipeline.schema, pipeline.log))
    with pipeline.store.session() as session:
        pipeline.store.put_checkpoint(session, marker, {"fingerprint": fingerprint})
    if counts:
        pipeline.log.info("lookups_changed", mapping=mapping.name, remapped=counts["read"],
                          changed=counts["changed"], rejected=counts["rejected"])
    for noise in ("read", "unchanged"):
        counts.pop(noise, None)
    return counts


def _stored_record(row: Record) -> SourceRecord | None:
    try:
        raw = json.loads(row.source_values or "")
    except ValueError:
        return None
    return SourceRecord(key=row.record_key, values=raw.get("values") or {},
                        origin=row.origin or row.record_key, unit=row.unit,
                        children=raw.get("children") or {})
