"""Write-back: what the connector knows of each record goes back into the business system.

A failed write-back is retried on its own next pass; nothing is sent to Trackdéchets again.
"""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import select

from connector.engine.context import Binding, Pipeline
from connector.sources.base import WriteBack
from connector.state.models import Record

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


def _write(pipeline: Pipeline, binding: Binding, rows: list[Record]) -> tuple[list[Record], dict[int, str]]:
    """Write ``rows``; on failure, each row alone, so one bad row never holds the others back."""
    try:
        binding.source.write_back([_update_of(r) for r in rows])
        return rows, {}
    except Exception as exc:  # any source failure is retried on the next pass
        if len(rows) == 1:
            return [], {rows[0].id: str(exc)}
        first_error = str(exc)
    written: list[Record] = []
    failed: dict[int, str] = {}
    for index, row in enumerate(rows):
        try:
            binding.source.write_back([_update_of(row)])
            written.append(row)
        except Exception as exc:
            failed[row.id] = str(exc)
            if index == 0 and str(exc) == first_error and len(rows) > 1:
                # Probably the system itself (database down): the same error for the page and
                # its first row. Spare it one attempt per row; the next pass tries again.
                failed.update({r.id: first_error for r in rows[1:]})
                break
    return written, failed


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
            written, failed = _write(pipeline, binding, rows)
            with pipeline.store.session() as session:
                for row in session.scalars(select(Record).where(Record.id.in_(list(stamps)))):
                    if row.id in failed:
                        row.writeback_error = failed[row.id][:2000]
                    # Changed again while we wrote? Then it stays due for the next pass.
                    elif row.updated_at == stamps[row.id]:
                        row.writeback_due = False
                        row.writeback_error = None
            counts["written"] += len(written)
            if failed:
                counts["failed"] += len(failed)
                sample = next(iter(failed.values()))
                keys = [r.record_key for r in rows if r.id in failed][:10]
                pipeline.log.error(
                    "writeback_failed", mapping=name, count=len(failed), keys=keys, error=sample
                )
    if counts:
        pipeline.log.info("written_back", **dict(counts))
    return dict(counts)
