"""The commands' work: one sync pass, the daemon, check, preview and retry.

Each step runs through :func:`run_step`, which records the run in the state store (for ``status``)
and turns an exception into a logged failure: a step never takes the process down with it.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress, TaskID
from sqlalchemy import select

from connector.engine.context import Pipeline
from connector.engine.ingest import ingest, map_record
from connector.engine.push import push
from connector.engine.track import track
from connector.engine.writeback import writeback
from connector.errors import ConfigError, ConnectorError, Fatal, StepFailed
from connector.failures import token_failure
from connector.logs import logs_to
from connector.runtime import Runtime, build_runtime, token_of
from connector.settings import Settings
from connector.sources.base import SourceRecord
from connector.state.models import Record, RecordState
from connector.state.store import sum_by_state, utcnow
from connector.trackdechets.client import ResponseInfo
from connector.trackdechets.errors import Unauthenticated

__all__ = ["STEPS", "retry_rejected", "run_daemon", "run_step", "sync_once"]

log = structlog.get_logger("connector")

Step = Callable[[Pipeline, threading.Event], dict[str, int]]
STEPS: dict[str, Step] = {"ingest": ingest, "push": push, "track": track, "writeback": writeback}


def run_step(
    pipeline: Pipeline, name: str, stop: threading.Event, *, reraise: bool = False
) -> dict[str, Any]:
    """Run one step and record it in the state store.

    By default a failure is logged and returned in the summary (``sync --once`` goes on with the
    next step); the daemon passes ``reraise`` so that its health tracking sees the failure. A
    failed step's summary keeps what it did meanwhile and its one-line ``causes``.
    """
    run_id = pipeline.store.start_run(name)
    try:
        counts = STEPS[name](pipeline, stop)
    except Exception as exc:
        failure = _as_step_failure(pipeline, name, exc)
        pipeline.store.finish_run(run_id, False, {**failure.counts, "error": str(failure)})
        if reraise and not isinstance(exc, ConnectorError):
            raise  # a bug: the daemon logs it with its traceback
        if reraise:
            raise failure from exc  # the daemon logs it once and marks the step failed
        if isinstance(exc, ConnectorError):
            log.error("step_failed", step=name, error=str(failure), error_type=type(exc).__name__)
        else:
            log.exception("step_failed", step=name, error=str(failure), error_type=type(exc).__name__)
        if isinstance(exc, Fatal) and not isinstance(exc, Unauthenticated | StepFailed):
            raise
        return {"step": name, "ok": False, **failure.counts, "error": str(failure), "causes": failure.causes}
    summary: dict[str, Any] = dict(counts)
    pacer = getattr(pipeline.client, "pacer", None)
    if pacer is not None and name in ("push", "track"):
        # Kept with the run so that `status`, a separate process, can show the budget too.
        summary["rate_budget_remaining"] = pacer.remaining()
    pipeline.store.finish_run(run_id, True, summary)
    return {"step": name, "ok": True, **counts}


def _as_step_failure(pipeline: Pipeline, name: str, exc: Exception) -> StepFailed:
    """Any exception out of a step, as a :class:`StepFailed` whose causes say what to do."""
    if isinstance(exc, StepFailed):
        return exc
    if isinstance(exc, Unauthenticated):
        return StepFailed(name, [token_failure(exc, pipeline.token_origin)])
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return StepFailed(name, [f"{name} failed: {first}: see the log lines before this one"])


def sync_once(runtime: Runtime, stop: threading.Event, *, progress: bool = False) -> dict[str, Any]:
    """ingest → push → track → write-back, once each; with ``progress``, a bar per step on stderr."""
    pipeline = runtime.pipeline
    results: list[dict[str, Any]] = []
    with ExitStack() as stack:
        bars: Progress | None = None
        if progress:
            stderr = sys.stderr
            bars = stack.enter_context(
                Progress(
                    *Progress.get_default_columns(),
                    MofNCompleteColumn(),
                    console=Console(stderr=True),
                    transient=False,
                )
            )
            if sys.stderr is not stderr:  # rich redirects stderr while the bars are drawn
                stack.enter_context(logs_to(sys.stderr, instead_of=stderr))
            tasks: dict[str, TaskID] = {}

            def advance(step: str, done: int) -> None:
                if step in tasks:
                    bars.advance(tasks[step], done)

            pipeline.progress = advance
            stack.callback(setattr, pipeline, "progress", None)
        for name in ("ingest", "push", "track", "writeback"):
            if stop.is_set():
                break
            if bars is not None:
                total = _due_operations(pipeline) if name == "push" else None
                tasks[name] = bars.add_task(name, total=total)
            results.append(run_step(pipeline, name, stop))
            if bars is not None:
                bars.update(
                    tasks[name], total=bars.tasks[-1].completed or 1, completed=bars.tasks[-1].completed or 1
                )
    counts = pipeline.store.counts()
    totals = sum_by_state(counts)
    new_rejections = sum(r.get("rejected", 0) for r in results)
    failures = [f"{r['step']}: {cause}" for r in results if not r["ok"] for cause in r["causes"]]
    ok = not failures and new_rejections == 0
    return {
        "ok": ok,
        "failures": failures,
        "steps": results,
        "records": counts,
        "totals": totals,
        "new_rejections": new_rejections,
    }


def _due_operations(pipeline: Pipeline) -> int:
    """Mutations the push step has ahead of it: a create that will be sealed counts twice."""
    seal = {b.mapping.name for b in pipeline.bindings if b.mapping.seal}
    with pipeline.store.session() as session:
        rows = session.execute(
            select(Record.mapping, Record.next_op).where(
                Record.state.in_([RecordState.PENDING, RecordState.IN_FLIGHT])
            )
        ).all()
    return sum(2 if op == "create" and mapping in seal else 1 for mapping, op in rows)


def run_daemon(
    settings: Settings, config_dir: Path, *, dry_run: bool = False, config_path: Path | None = None
) -> int:
    from connector.daemon import Daemon
    from connector.metrics import build_metrics

    observers: list[Callable[[ResponseInfo], None]] = []

    def on_response(info: ResponseInfo) -> None:
        for observer in observers:
            observer(info)

    holder: dict[str, Runtime] = {
        "rt": build_runtime(settings, config_dir, dry_run=dry_run, on_response=on_response)
    }

    # No lock between steps: ingest, push, track and write-back run at once and meet in the state
    # store (short transactions, conditional claims), so an API stall never holds up the ERP side
    # and a locked ERP table never holds up the API side. A runtime replaced by a reload is closed
    # once the last step still using it returns.
    users: dict[int, int] = {}
    retired: list[Runtime] = []
    guard = threading.Lock()

    def make_step(name: str) -> Callable[[threading.Event], object]:
        def step(stop: threading.Event) -> object:
            with guard:
                runtime = holder["rt"]
                users[id(runtime)] = users.get(id(runtime), 0) + 1
            try:
                return run_step(runtime.pipeline, name, stop, reraise=True)
            finally:
                with guard:
                    users[id(runtime)] -= 1
                    idle = [r for r in retired if not users.get(id(r))]
                    for old in idle:
                        retired.remove(old)
                        users.pop(id(old), None)
                for old in idle:
                    old.close()

        return step

    def reload() -> bool:
        from connector.logs import register_secret
        from connector.settings import load_settings

        # A ConfigError propagates: the daemon logs its problems once and keeps the running set.
        new_settings = load_settings(config_path)
        register_secret(new_settings.trackdechets.token)
        register_secret(token_of(new_settings))  # the token as sent, without stray spaces
        new_runtime = build_runtime(new_settings, config_dir, dry_run=dry_run, on_response=on_response)
        # No waiting for a running step here: the daemon's main loop (and its watchdog) must go on.
        with guard:
            old = holder["rt"]
            holder["rt"] = new_runtime
            busy = bool(users.get(id(old)))
            if busy:
                retired.append(old)
        if not busy:
            old.close()
        daemon.reschedule(new_settings.schedule.intervals())
        log.info("reloaded", mappings=[b.mapping.name for b in new_runtime.pipeline.bindings])
        return True

    intervals = settings.schedule.intervals()
    steps = {name: make_step(name) for name in STEPS}
    daemon = Daemon(steps, intervals, drain_timeout=settings.daemon.drain_timeout_seconds, on_reload=reload)
    metrics = build_metrics(settings, daemon, lambda: holder["rt"]) if settings.metrics.enabled else None
    if metrics is not None:
        counters = metrics.metrics
        assert counters is not None  # build_metrics always sets it

        def count(info: ResponseInfo) -> None:
            counters.observe_request(info.outcome)
            if info.attempt > 1:
                counters.observe_retry()

        observers.append(count)
    receiver = None
    hook_token = settings.webhooks.token
    if settings.webhooks.enabled and hook_token is not None:
        from connector.logs import register_secret
        from connector.webhooks import WebhookReceiver

        register_secret(hook_token)
        hooks = settings.webhooks
        receiver = WebhookReceiver(
            lambda: holder["rt"].store,
            host=hooks.host,
            port=hooks.port,
            path=hooks.path,
            token=hook_token.get_secret_value(),
            on_hint=lambda: daemon.run_soon("track"),
        ).start()
    log.info(
        "daemon_starting",
        mappings=[b.mapping.name for b in holder["rt"].pipeline.bindings],
        url=settings.trackdechets.url,
        dry_run=dry_run,
    )
    try:
        return daemon.run()
    finally:
        if receiver is not None:
            receiver.stop()
        if metrics is not None:
            metrics.stop()
        for runtime in [*retired, holder["rt"]]:
            runtime.close()


def retry_rejected(
    settings: Settings,
    config_dir: Path,
    *,
    keys: list[str] | None,
    since: str | None,
    all_rejected: bool,
    mapping: str | None,
    dry_run: bool,
) -> int:
    """Re-map rejected records with the current mapping and put them back in line."""
    runtime = build_runtime(settings, config_dir, offline=True)
    pipeline = runtime.pipeline
    replayed = still_failing = 0
    try:
        query = select(Record).where(Record.state == RecordState.REJECTED)
        if mapping:
            query = query.where(Record.mapping == mapping)
        if keys:
            query = query.where(Record.record_key.in_(keys))
        if since:
            try:
                moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
            except ValueError as exc:
                raise ConfigError(f"--since: {since!r} is not an ISO date") from exc
            if moment.tzinfo is None:
                moment = moment.astimezone()
            query = query.where(Record.updated_at >= moment)
        with pipeline.store.session() as session:
            for row in session.scalars(query):
                binding = pipeline.binding(row.mapping)
                if binding is None or not row.source_values:
                    print(f"{row.mapping} / {row.record_key}: cannot replay (mapping or raw data missing)")
                    still_failing += 1
                    continue
                raw = json.loads(row.source_values)
                record = SourceRecord(
                    row.record_key, raw.get("values", {}), row.origin, row.unit, raw.get("children", {})
                )
                entry = map_record(binding, record)
                if entry.payload is None:
                    print(f"{row.mapping} / {row.record_key}: still invalid: {entry.error}")
                    still_failing += 1
                    if not dry_run:
                        row.last_error = entry.error
                    continue
                op = (
                    row.next_op
                    if row.next_op in ("seal",) and row.payload_hash == entry.hash
                    else ("update" if row.bsd_id else "create")
                )
                print(f"{row.mapping} / {row.record_key}: {'would replay' if dry_run else 'replayed'} ({op})")
                replayed += 1
                if dry_run:
                    continue
                row.payload = json.dumps(entry.payload, sort_keys=True, ensure_ascii=False)
                row.payload_hash = entry.hash
                row.state, row.next_op = RecordState.PENDING, op
                row.last_error = None
                row.error_fields = None
                row.attempts = 0
                row.next_attempt_at = None
                row.writeback_due = True
                row.updated_at = utcnow()
                log.info("record_replayed", mapping=row.mapping, record_key=row.record_key, op=op)
    finally:
        runtime.close()
    print(f"{replayed} record(s) {'would be ' if dry_run else ''}replayed, {still_failing} still failing")
    return 0 if still_failing == 0 else 1
