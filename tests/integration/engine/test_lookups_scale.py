"""Lookups in the customer's shape: 2,000 orders over 200 clients, a correction made while the
connector is stopped, a reference file rewritten in another order, a client deleted and restored."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from connector.engine.ingest import ingest
from connector.runtime import build_runtime
from connector.settings import load_settings

ORDERS, CLIENTS = 2000, 200

MAPPING = """
version = 1
name = "orders"
kind = "BSDD"
[source]
type = "csv"
folder = "inbox"
pattern = "bons*.csv"
key = ["id"]
delimiter = ";"
stable_seconds = 0
[lifecycle]
seal = false
[lookups.clients]
file = "clients.csv"
key = "code"
[fields]
"emitter.company.siret" = { lookup = "clients", by = "client", column = "siret" }
"emitter.company.mail" = { lookup = "clients", by = "client", column = "mail" }
"wasteDetails.code" = { column = "code", transforms = ["waste_code"] }
"""


def _clients(path: Path, mails: dict[int, str] | None = None, reverse: bool = False,
             skip: int | None = None) -> None:
    numbers = [n for n in range(CLIENTS) if n != skip]
    lines = [f"C{n:04d};85243162000123;{(mails or {}).get(n, f'c{n}@erp.example')}" for n in numbers]
    path.write_text("code;siret;mail\n" + "\n".join(reversed(lines) if reverse else lines) + "\n", "utf-8")


def _runtime(workdir: Path):
    settings = load_settings(workdir / "config.toml", env={})
    return build_runtime(settings, workdir, offline=True)


def _pass(workdir: Path) -> tuple[dict[str, int], float, dict[str, str]]:
    runtime = _runtime(workdir)
    try:
        started = time.perf_counter()
        counts = ingest(runtime.pipeline, threading.Event())
        elapsed = time.perf_counter() - started
        payloads = {r.record_key: json.loads(r.payload or "{}") for r in runtime.store.records()}
        mails = {k: p.get("emitter", {}).get("company", {}).get("mail") for k, p in payloads.items()}
        states = {r.record_key: r.state for r in runtime.store.records()}
    finally:
        runtime.close()
    return counts, elapsed, {k: f"{states[k]}:{mails[k]}" for k in states}


@pytest.mark.slow
def test_only_the_records_of_a_corrected_client_change(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "m.toml").write_text(MAPPING, "utf-8")
    config = ('[trackdechets]\nurl = "http://127.0.0.1:9/"\n[state]\ndir = "var"\n'
              '[mappings]\npaths = ["m.toml"]\n')
    (tmp_path / "config.toml").write_text(config, "utf-8")
    _clients(tmp_path / "clients.csv")
    rows = [f"{i};C{i % CLIENTS:04d};130205*" for i in range(ORDERS)]
    (tmp_path / "inbox" / "bons_1.csv").write_text("id;client;code\n" + "\n".join(rows) + "\n", "utf-8")

    counts, _, first = _pass(tmp_path)
    assert counts["new"] == ORDERS
    # Rewritten in another order, same content: nothing to re-evaluate.
    _clients(tmp_path / "clients.csv", reverse=True)
    counts, _, same = _pass(tmp_path)
    assert counts.get("changed", 0) == 0
    assert same == first

    # Corrected while the connector is stopped (each pass above is a fresh start).
    _clients(tmp_path / "clients.csv", mails={42: "compta@client42.example"})
    counts, elapsed, after = _pass(tmp_path)
    print(f"remap of {ORDERS} records after a lookup change: {elapsed:.2f}s")
    changed = {k for k in after if after[k] != first[k]}
    assert changed == {str(i) for i in range(42, ORDERS, CLIENTS)}
    assert counts["changed"] == ORDERS // CLIENTS
    assert all(after[k] == "pending:compta@client42.example" for k in changed)
    assert elapsed < 30, f"re-evaluating {ORDERS} records took {elapsed:.1f}s"

    # A client deleted from the file rejects its orders, by name; restored, they come back.
    _clients(tmp_path / "clients.csv", mails={42: "compta@client42.example"}, skip=7)
    counts, _, gone = _pass(tmp_path)
    assert counts["rejected"] == ORDERS // CLIENTS
    rejected = {k for k, v in gone.items() if v.startswith("rejected")}
    assert rejected == {str(i) for i in range(7, ORDERS, CLIENTS)}
    _clients(tmp_path / "clients.csv", mails={42: "compta@client42.example"})
    counts, _, back = _pass(tmp_path)
    assert back == after
