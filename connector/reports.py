"""What ``status`` and ``sync --once`` print for a person (rich tables) or a script (JSON)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from connector.state.models import RecordState, StepRun
from connector.state.store import StateStore, StatusReport

__all__ = ["failing_steps", "print_status", "print_sync_summary"]

STEP_NAMES = ("ingest", "push", "track", "writeback")


def failing_steps(store: StateStore) -> dict[str, str]:
    """Step → cause, for each step whose latest finished run failed (``sync`` or the daemon)."""
    failing: dict[str, str] = {}
    with store.session() as session:
        for step in STEP_NAMES:
            run = session.scalars(
                select(StepRun)
                .where(StepRun.step == step, StepRun.finished_at.is_not(None))
                .order_by(StepRun.id.desc())
                .limit(1)
            ).first()
            if run is not None and not run.ok:
                summary = json.loads(run.summary) if run.summary else {}
                cause = summary.get("error") if isinstance(summary, dict) else None
                failing[step] = str(cause or "failed")
    return failing

_STATES = tuple(state.value for state in RecordState)


def _records_table(counts: dict[str, dict[str, int]]) -> Table:
    table = Table(title="Records by state")
    table.add_column("mapping", overflow="fold")
    for state in _STATES:
        table.add_column(state, justify="right")
    table.add_column("total", justify="right")
    for mapping, per_state in sorted(counts.items()):
        table.add_row(mapping, *(str(per_state.get(s, 0)) for s in _STATES), str(sum(per_state.values())))
    return table


def print_status(
    report: StatusReport,
    *,
    as_json: bool,
    console: Console | None = None,
    failing: dict[str, str] | None = None,
) -> None:
    failing = failing or {}
    if as_json:
        body = {**asdict(report), "failing_steps": failing}
        print(json.dumps(body, indent=2, default=str, ensure_ascii=False))
        return
    console = console or Console()
    if report.not_trusted:
        console.print(f"[bold red]NO CREATE until `td-connector rebuild-state`:[/] {report.not_trusted}")
    for step, cause in failing.items():
        console.print(f"{step} FAILED: {cause}", markup=False, highlight=False)
    console.print(_records_table(report.counts))
    budget = (
        f"{report.rate_budget['remaining']} requests left at {report.rate_budget['at']}"
        if report.rate_budget
        else "unknown (no push or track run yet)"
    )
    console.print(
        f"in doubt (awaiting reconciliation): {report.in_doubt}    "
        f"write-back backlog: {report.writeback_backlog}    rate budget: {budget}"
    )
    if report.rejected:
        table = Table(title="Rejected and conflicting records (newest first)")
        for column in ("mapping", "key", "state", "error"):
            table.add_column(column, overflow="fold")
        for row in report.rejected:
            table.add_row(row["mapping"], row["key"], row["state"], row["error"] or "")
        console.print(table)
    if report.last_runs:
        table = Table(title="Last step runs")
        for column in ("step", "started", "ok", "summary"):
            table.add_column(column, overflow="fold")
        for run in report.last_runs:
            table.add_row(
                run["step"],
                run["started_at"],
                "yes" if run["ok"] else "NO",
                json.dumps(run["summary"]) if run["summary"] else "",
            )
        console.print(table)


def print_sync_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    for step in summary["steps"]:
        details = ", ".join(f"{k}={v}" for k, v in step.items() if k not in ("step", "ok", "error", "causes"))
        console.print(f"{step['step']:<10} {'ok' if step['ok'] else 'FAILED'}  {details}", markup=False)
    console.print(_records_table(summary["records"]))
    failures = summary.get("failures") or []
    if failures:
        verdict = f"FAILED ({len(failures)} failure(s), see below)"
    elif summary["new_rejections"]:
        verdict = f"{summary['new_rejections']} record(s) rejected (see `td-connector status`)"
    else:
        verdict = "ok"
    console.print(f"sync: {verdict}", markup=False)
