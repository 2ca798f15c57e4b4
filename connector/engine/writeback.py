"""Write-back: what the connector knows of each record goes back into the business system.

A failed write-back is retried on its own next pass; nothing is sent to Trackdéchets again.
"""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import select

from connector.engine.context import Pipeline
from connector.sources.base import WriteBack
from connector.state.models import Record
from connector.state.store import utcnow

__all__ = ["writeback"]


def _update_of(row: Record) -> WriteBack:
    return WriteBack(
        key=row.record_key,
        unit=row.unit,
        bsd_id=row.bsd_id,
        readable_id=row.readable_id,
        status=row.state,
        remote_status=row.remote_status,
        error=row.last_error,
        updated_at=row.updated_at.isoformat().replace("+00:00", "Z"),
    )


def writeback(pipeline: Pipeline, stop: threading.Event, page: int = 500) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for binding in pipeline.bindings:
        name = binding.mapping.name
        last_id = 0
        while not stop.is_set():
            with pipeline.store.session() as session:
                rows = list(
                    session.scalars(
                        select(Record)
                        .where(Record.mapping == name, Record.writeback_due.is_(True), Record.id > last_id)
                        .order_by(Record.id)
                        .limit(page)
                    )
                )
            if not rows:
                break
            last_id = rows[-1].id
            stamps = {r.id: r.updated_at for r in rows}
            try:
                binding.source.write_back([_update_of(r) for r in rows])
            except Exception as exc:  # any source failure: retried on the next pass
                counts["failed"] += len(rows)
                pipeline.log.error("writeback_failed", mapping=name, count=len(rows), error=str(exc))
                with pipeline.store.session() as session:
                    for row in session.scalars(select(Record).where(Record.id.in_(list(stamps)))):
                        row.writeback_error = str(exc)[:2000]
                break
            with pipeline.store.session() as session:
                for row in session.scalars(select(Record).where(Record.id.in_(list(stamps)))):
                    # Changed again while we wrote? Then it stays due for the next pass.
                    if row.updated_at == stamps[row.id]:
                        row.writeback_due = False
                        row.writeback_error = None
            counts["written"] += len(rows)
    if counts:
        pipeline.log.info("written_back", at=utcnow().isoformat(), **dict(counts))
    return dict(counts)
