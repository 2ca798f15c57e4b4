"""Every example mapping of `mappings/` runs end to end against the emulator over HTTP.

Its sample rows are read from a copy of `mappings/data`, mapped, validated, created and sealed
(or published); every document sent validates against the official schema too.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
from graphql import GraphQLSchema

from connector.domain.demo_companies import DEMO_TOKEN
from connector.runtime import build_runtime
from connector.service import sync_once
from connector.settings import load_settings
from connector.trackdechets.schema import validate_operation
from td_emulator.config import EmulatorConfig
from td_emulator.testing import serve_in_thread

MAPPINGS = Path(__file__).resolve().parents[3] / "mappings"
# The token of a user of the company that appears on each kind's BSDs (the emulator's demo seed).
TOKENS = {"bsvhu_csv.toml": "demo-token-vhu_emitter", "bsdd_erp_csv.toml": "demo-token-destination"}


@pytest.mark.parametrize("name", sorted(p.name for p in MAPPINGS.glob("*.toml")))
def test_example_mapping_creates_and_seals_its_sample_records(
    name: str, tmp_path: Path, official_schema: GraphQLSchema
) -> None:
    shutil.copytree(MAPPINGS / "data", tmp_path / "data")
    shutil.copy(MAPPINGS / name, tmp_path / name)
    if (tmp_path / "data" / "erp.sql").exists():
        with sqlite3.connect(tmp_path / "data" / "erp.sqlite") as connection:
            connection.executescript((tmp_path / "data" / "erp.sql").read_text("utf-8"))
    mapping_text = (tmp_path / name).read_text("utf-8").replace("stable_seconds = ", "# stable_seconds = ")
    if "[source]" in mapping_text and 'type = "csv"' in mapping_text:
        mapping_text = mapping_text.replace('type = "csv"', 'type = "csv"\nstable_seconds = 0', 1)
    (tmp_path / name).write_text(mapping_text, "utf-8")
    with serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[trackdechets]\nurl = "{served.url}"\n[state]\ndir = "var"\n[mappings]\npaths = ["{name}"]\n',
            "utf-8",
        )
        settings = load_settings(config, env={"TDC_TRACKDECHETS__TOKEN": TOKENS.get(name, DEMO_TOKEN)})
        runtime = build_runtime(settings, tmp_path)
        try:
            summary = sync_once(runtime, threading.Event())
            records = list(runtime.store.records())
        finally:
            runtime.close()
        journal = list(served.emulator.journal)
    assert records, f"{name}: no sample record was read"
    problems = {r.record_key: r.last_error for r in records if r.state not in ("synced", "done")}
    assert problems == {}, summary
    assert all(r.bsd_id for r in records)
    assert {r.remote_status for r in records} <= {"SEALED", "INITIAL"}
    assert all(not r.remote_is_draft for r in records)
    # What was sent validates against the official schema, not only the emulator's subset.
    kind = runtime.pipeline.bindings[0].mapping.kind
    create_ops = [op for e in journal for op in e["operations"] if kind.create_mutation in op["fields"]]
    assert len(create_ops) == len(records)
    from connector.engine.operations import create_op

    for record in records:
        import json

        op = create_op(kind, json.loads(record.payload or "{}"))
        assert validate_operation(official_schema, op.query, op.variables) == []
