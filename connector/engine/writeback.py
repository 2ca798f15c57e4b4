"""Write-back: what the connector knows of each record goes back into the business system.

A failed write-back is retried on its own next pass; nothing is sent to Trackdéchets again. A
write-back failing for every record of a mapping (a wrong statement, a read-only receipts folder,
a database down) makes the step fail; a few failing rows stay row-level.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime

from sqlalchemy import func, select, update

from connector.engine.context import Binding, Pipeline
from connector.errors import StepFailed
from connector.failures import writeback_failure
from connector.sources.base import WriteBack
from connector.state.models import Record
from connector.state.store import utcnow

__all__ = ["writeback"]

_REFRESH_PREFIX = "writeback-refresh:"
"""Checkpoint slot holding the time of a mapping's last full write-back (not a mapping name)."""


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
    causes: list[str] = []
    for binding in pipeline.bindings:
        name = binding.mapping.name
        if pipeline.options.dry_run:
            counts["would_write"] += _due_count(pipeline, name)
            continue
        _refresh(pipeline, name)
        written_here = failed_here = 0
        first_error = ""
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
            written_here += len(written)
            if failed:
                counts["failed"] += len(failed)
                failed_here += len(failed)
                sample = next(iter(failed.values()))
                first_error = first_error or sample
                keys = [r.record_key for r in rows if r.id in failed][:10]
                pipeline.log.error(
                    "writeback_failed", mapping=name, count=len(failed), keys=keys, error=sample
                )
        if failed_here and not written_here:
            receipts = getattr(getattr(binding.source, "spec", None), "type", "") == "csv"
            causes.append(
                writeback_failure(name, binding.mapping.path, failed_here, first_error, receipts=receipts)
            )
    if counts:
        pipeline.log.info("written_back", **dict(counts))
    if causes:
        raise StepFailed("writeback", causes, dict(counts))
    return dict(counts)


def _refresh(pipeline: Pipeline, name: str) -> None:
    """Every ``writeback_refresh_seconds``, make every record of ``name`` that has a BSD due again.

    The business system is not ours: a row restored from a backup, re-inserted by an import or
    whose status columns someone cleared gets them again at the next refresh. The time of the last
    refresh is kept with the checkpoints, so ``sync --once`` from cron refreshes on the same rhythm.
    """
    every = pipeline.options.writeback_refresh_seconds
    if every <= 0:
        return
    slot = f"{_REFRESH_PREFIX}{name}"
    now = utcnow()
    last = (pipeline.store.get_checkpoint(slot) or {}).get("at")
    if last is not None and (now - datetime.fromisoformat(last)).total_seconds() < every:
        return
    # Only records with a BSD: one the store knows no BSD for would write empty ids over those the
    # business system may still hold (a lost store's, a record rebuild-state held as a conflict).
    refresh = update(Record).where(
        Record.mapping == name, Record.writeback_due.is_(False), Record.bsd_id.is_not(None)
    )
    with pipeline.store.session() as session:
        if last is not None:  # a store's first pass only starts the clock: all it knows is due anyway
            result = session.execute(
                refresh.values(writeback_due=True).execution_options(synchronize_session=False)
            )
            pipeline.log.debug("writeback_refresh", mapping=name, records=result.rowcount)  # type: ignore[attr-defined]
        pipeline.store.put_checkpoint(session, slot, {"at": now.isoformat()})


def _due_count(pipeline: Pipeline, name: str) -> int:
    with pipeline.store.session() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(Record).where(
                    Record.mapping == name, Record.writeback_due.is_(True)
                )
            )
            or 0
        )
