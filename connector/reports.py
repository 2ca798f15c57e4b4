"""What ``status`` and ``sync --once`` print for a person (rich tables) or a script (JSON)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table

from connector.state.models import RecordState
from connector.state.store import StatusReport

__all__ = ["print_status", "print_sync_summary"]

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


def print_status(report: StatusReport, *, as_json: bool, console: Console | None = None) -> None:
    if as_json:
        print(json.dumps(asdict(report), indent=2, default=str, ensure_ascii=False))
        return
    console = console or Console()
    if report.not_trusted:
        console.print(f"[bold red]NO CREATE until `td-connector rebuild-state`:[/] {report.not_trusted}")
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
        details = ", ".join(f"{k}={v}" for k, v in step.items() if k not in ("step", "ok"))
        console.print(f"{step['step']:<10} {'ok' if step['ok'] else 'FAILED'}  {details}")
    console.print(_records_table(summary["records"]))
    verdict = "ok" if summary["ok"] else f"{summary['new_rejections']} record(s) rejected or a step failed"
    console.print(f"sync: {verdict}")
