"""``td-connector demo``: sample records become BSDDs on a local emulator, statuses come back.

Everything runs on this machine: the emulator is served in-process on a loopback port, the
"business system" is a CSV export and a SQLite ERP table written into a work folder, and the
connector runs exactly as ``td-connector sync --once`` would, with a real config file and the
token in the environment.
"""

from __future__ import annotations

import csv
import io
import shutil
import sqlite3
import tempfile
import threading
from contextlib import ExitStack
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from connector.domain.demo_companies import DEMO_TOKEN
from connector.logs import configure_logging
from connector.runtime import build_runtime
from connector.service import sync_once
from connector.settings import load_settings

__all__ = ["run_demo"]

# What the other parties do to each BSD, by record key: the demo's little story.
STORY: dict[str, list[str]] = {
    "BE-2026-0412": ["sign-emission", "sign-transport", "receive", "process"],
    "BE-2026-0413": ["sign-emission", "sign-transport", "receive", "process"],
    "BE-2026-0414": ["sign-emission", "sign-transport"],
    "BE-2026-0416": ["sign-emission", "sign-transport", "refuse"],
    "ENL-1001": ["sign-emission", "sign-transport", "receive", "process"],
    "ENL-1002": ["sign-emission", "sign-transport", "receive"],
    "ENL-1003": ["sign-emission"],
}
EXPECTED = {
    "BE-2026-0412": "PROCESSED",
    "BE-2026-0413": "AWAITING_GROUP",
    "BE-2026-0414": "SENT",
    "BE-2026-0416": "REFUSED",
    "ENL-1001": "PROCESSED",
    "ENL-1002": "ACCEPTED",
    "ENL-1003": "SIGNED_BY_PRODUCER",
}
EXPECTED_REJECTED = {"BE-2026-0415", "ENL-1004"}

_CONFIG = """\
# Written by `td-connector demo`: the same file format as config.example.toml.
[trackdechets]
url = "{url}"
# The token comes from the environment: TDC_TRACKDECHETS__TOKEN

[state]
dir = "var"

[mappings]
paths = ["mappings/*.toml"]

[safety]
max_creations_per_run = 100
"""


def _asset(name: str) -> bytes:
    return resources.files("connector.demo").joinpath(name).read_bytes()


def _prepare(workdir: Path, url: str) -> Path:
    # Every run starts afresh (the emulator does too): a kept work folder is emptied of the last run.
    for leftover in ("var", "inbox", "mappings"):
        shutil.rmtree(workdir / leftover, ignore_errors=True)
    (workdir / "inbox").mkdir(parents=True, exist_ok=True)
    (workdir / "mappings").mkdir(exist_ok=True)
    (workdir / "inbox" / "enlevements_mars.csv").write_bytes(_asset("enlevements_mars.csv"))
    for name in ("bsdd_csv.toml", "bsdd_sqlite.toml"):
        (workdir / "mappings" / name).write_bytes(_asset(name))
    # The CSV mapping reads `inbox` beside the mapping file: point it at the work folder's inbox.
    csv_mapping = workdir / "mappings" / "bsdd_csv.toml"
    csv_mapping.write_text(
        csv_mapping.read_text("utf-8").replace('folder = "inbox"', 'folder = "../inbox"'), "utf-8"
    )
    sql_mapping = workdir / "mappings" / "bsdd_sqlite.toml"
    sql_mapping.write_text(sql_mapping.read_text("utf-8").replace("{workdir}", workdir.as_posix()), "utf-8")
    database = workdir / "erp.db"
    database.unlink(missing_ok=True)
    with sqlite3.connect(database) as connection:
        connection.executescript(_asset("erp.sql").decode("utf-8"))
    config = workdir / "config.toml"
    config.write_text(_CONFIG.format(url=url), "utf-8")
    return config


def _act(console: Console, url: str, readable_ids: dict[str, str]) -> None:
    with httpx.Client(base_url=url, timeout=10) as admin:
        for key, actions in STORY.items():
            readable = readable_ids.get(key)
            if not readable:
                continue
            for action in actions:
                response = admin.post(f"_emulator/bsds/{readable}/{action}", json={"author": "Démo"})
                if response.status_code != 200:
                    raise RuntimeError(f"emulator refused {action} on {readable}: {response.text}")
            console.print(
                f"  {key} → {readable}: {', '.join(actions)} → [bold]{response.json()['status']}[/bold]"
            )


def _receipt_rows(workdir: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for path in sorted(workdir.rglob("*.receipt.csv")):
        text = path.read_text("utf-8-sig")
        rows.extend(csv.DictReader(io.StringIO(text), delimiter=";"))
    return rows


def _erp_rows(workdir: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(workdir / "erp.db") as connection:
        connection.row_factory = sqlite3.Row
        return [
            dict(r)
            for r in connection.execute(
                "SELECT numero, td_numero, td_statut, td_erreur FROM enlevements ORDER BY numero"
            )
        ]


def _show(console: Console, workdir: Path) -> dict[str, str]:
    seen: dict[str, str] = {}
    table = Table(title="Receipt CSV written beside the drop folder (receipts/*.receipt.csv)")
    for column in ("key", "readable_id", "status", "remote_status", "error"):
        table.add_column(column, overflow="fold")
    for row in _receipt_rows(workdir):
        table.add_row(
            row.get("key", ""),
            row.get("readable_id", ""),
            row.get("status", ""),
            row.get("remote_status", ""),
            (row.get("error") or "")[:160],
        )
        seen[row.get("key", "")] = row.get("remote_status") or row.get("status", "")
    console.print(table)
    table = Table(title="ERP table `enlevements`, columns td_* written back by UPDATE")
    for column in ("numero", "td_numero", "td_statut", "td_erreur"):
        table.add_column(column, overflow="fold")
    for row in _erp_rows(workdir):
        table.add_row(
            row["numero"], row["td_numero"] or "", row["td_statut"] or "", (row["td_erreur"] or "")[:160]
        )
        seen[row["numero"]] = row["td_statut"] or ""
    console.print(table)
    return seen


def run_demo(workdir: Path | None = None, *, json_logs: bool = False, console: Console | None = None) -> int:
    """Run the story; 0 when every record ends where the story says it should."""
    console = console or Console()
    with ExitStack() as stack:
        keep = workdir is not None
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="td-demo-")))
        workdir = workdir.absolute()
        workdir.mkdir(parents=True, exist_ok=True)
        # The emulator is an optional extra: imported here only (cli.cmd_demo checked it is installed).
        from td_emulator.config import EmulatorConfig
        from td_emulator.testing import serve_in_thread

        served = stack.enter_context(serve_in_thread(EmulatorConfig(admin_enabled=True)))
        console.rule("[bold]trackdechets-connector demo")
        console.print(f"Local Trackdéchets emulator at {served.url} (nothing leaves this machine).")
        config = _prepare(workdir, served.url)
        console.print(f"Work folder: {workdir}  (config.toml, inbox/, erp.db, mappings/, var/)")
        log_stream = None if json_logs else stack.enter_context(open(workdir / "demo.log", "w"))
        env = {"TDC_TRACKDECHETS__TOKEN": DEMO_TOKEN}
        settings = load_settings(config, env=env)
        configure_logging("INFO", "json", stream=log_stream, secrets=[DEMO_TOKEN])

        console.print("\n[bold]1. Sync:[/bold] read the CSV export and the ERP table, create and seal BSDDs")
        runtime = build_runtime(settings, workdir)
        stack.callback(runtime.close)
        summary = sync_once(runtime, threading.Event())
        for step in summary["steps"]:
            details = ", ".join(f"{k}={v}" for k, v in step.items() if k not in ("step", "ok"))
            console.print(f"  {step['step']:<10} {details}")
        readable = {r.record_key: r.readable_id or "" for r in runtime.store.records()}

        console.print(
            "\n[bold]2. The other parties act[/bold] (emulator admin API: producer signature, "
            "transporter, treatment site)"
        )
        _act(console, served.url, readable)

        console.print("\n[bold]3. Sync again:[/bold] statuses are tracked and written back")
        summary = sync_once(runtime, threading.Event())
        for step in summary["steps"]:
            details = ", ".join(f"{k}={v}" for k, v in step.items() if k not in ("step", "ok"))
            console.print(f"  {step['step']:<10} {details}")
        seen = _show(console, workdir)

        wrong = {k: (seen.get(k), v) for k, v in EXPECTED.items() if seen.get(k) != v}
        wrong.update({k: (seen.get(k), "rejected") for k in EXPECTED_REJECTED if seen.get(k) != "rejected"})
        if wrong:
            console.print(f"[red]demo: unexpected statuses: {wrong}[/red]")
            return 1
        console.print(
            "\n[green]demo: ok[/green] — every valid record became a BSDD and its status came "
            "back; the two invalid ones were rejected with the field and the reason."
        )
        if keep:
            console.print(
                f"Files kept in {workdir}: config.toml, inbox/ (with receipts/), erp.db, var/state.db, "
                "demo.log (the connector's JSON log lines)"
            )
        else:
            console.print(
                "Run `td-connector demo --workdir DIR` to keep the files (config, receipts, "
                "ERP database, state store, JSON logs) and look at them."
            )
    return 0
