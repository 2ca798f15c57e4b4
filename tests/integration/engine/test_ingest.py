"""Ingest over a real CSV drop folder and a real SQLite state store."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from graphql import GraphQLSchema

from connector.engine.context import Binding, Pipeline
from connector.engine.ingest import ingest
from connector.mapping.loading import load_mapping
from connector.sources import open_source
from connector.state import RecordState, open_state_store
from connector.state.models import Record

DEMO = Path(__file__).resolve().parents[3] / "connector" / "demo"


@pytest.fixture
def pipeline(tmp_path: Path, official_schema: GraphQLSchema) -> Pipeline:
    (tmp_path / "inbox").mkdir()
    shutil.copy(DEMO / "bsdd_csv.toml", tmp_path / "mapping.toml")
    mapping = load_mapping(tmp_path / "mapping.toml", official_schema)
    source = open_source(
        mapping.source, base_dir=tmp_path, mapping_name=mapping.name, state_dir=tmp_path / "var"
    )
    store = open_state_store(f"sqlite:///{tmp_path}/var/state.db")
    return Pipeline(store=store, bindings=[Binding(mapping, source)])


def drop(pipeline: Pipeline, name: str, text: str) -> None:
    folder = Path(pipeline.bindings[0].mapping.path).parent / "inbox"
    (folder / name).write_text(text, encoding="utf-8")


def states(pipeline: Pipeline) -> dict[str, tuple[str, str | None]]:
    return {r.record_key: (r.state, r.next_op) for r in pipeline.store.records()}


def demo_csv() -> str:
    return (DEMO / "enlevements_mars.csv").read_text("utf-8")


def test_new_records_wait_for_create_and_bad_rows_are_rejected_with_reason(pipeline: Pipeline) -> None:
    drop(pipeline, "a.csv", demo_csv())
    counts = ingest(pipeline, threading.Event())
    assert counts["new"] == 4
    assert counts["rejected"] == 1
    got = states(pipeline)
    assert got["BE-2026-0412"] == (RecordState.PENDING, "create")
    assert got["BE-2026-0415"] == (RecordState.REJECTED, None)
    rejected = next(r for r in pipeline.store.records() if r.record_key == "BE-2026-0415")
    assert "a.csv:line 5" in (rejected.last_error or "")
    assert "emitter.company.siret" in (rejected.last_error or "")
    assert "siret_producteur" in (rejected.last_error or "")
    assert "checksum" in (rejected.last_error or "")


def test_a_redropped_identical_file_changes_nothing(pipeline: Pipeline) -> None:
    drop(pipeline, "a.csv", demo_csv())
    ingest(pipeline, threading.Event())
    before = {r.record_key: r.updated_at for r in pipeline.store.records()}
    drop(pipeline, "a.csv", demo_csv())
    counts = ingest(pipeline, threading.Event())
    assert counts.get("new", 0) == 0
    assert counts.get("changed", 0) == 0
    assert {r.record_key: r.updated_at for r in pipeline.store.records()} == before


def pretend_synced(pipeline: Pipeline, bsds: dict[str, tuple[str, str]]) -> None:
    """Records as if push had created their BSD (id, status) and nothing were left to send."""
    with pipeline.store.session() as session:
        for row in session.query(Record):
            if row.record_key in bsds:
                row.bsd_id, row.remote_status = bsds[row.record_key]
                row.state, row.next_op = "synced", None


def test_a_corrected_row_fixes_a_rejection_and_a_changed_row_after_signature_is_a_conflict(
    pipeline: Pipeline,
) -> None:
    drop(pipeline, "a.csv", demo_csv())
    ingest(pipeline, threading.Event())
    # Pretend 0412 was created and signed by the producer, 0413 created but unsigned.
    pretend_synced(pipeline, {"BE-2026-0412": ("f1", "SIGNED_BY_PRODUCER"), "BE-2026-0413": ("f2", "SEALED")})
    corrected = (
        demo_csv()
        .replace("85243162000124", "85243162000123")  # fix the SIRET of 0415
        .replace("1 250,5", "1 300,0")  # 0412 weighs more: after signature
        .replace(";85;estimée", ";90;estimée")
    )  # 0413 weighs more: before signature
    drop(pipeline, "b.csv", corrected)
    counts = ingest(pipeline, threading.Event())
    got = states(pipeline)
    assert got["BE-2026-0415"] == (RecordState.PENDING, "create")
    assert got["BE-2026-0413"] == (RecordState.PENDING, "update")
    assert got["BE-2026-0412"] == (RecordState.CONFLICT, None)
    assert counts["conflict"] == 1
    conflict = next(r for r in pipeline.store.records() if r.record_key == "BE-2026-0412")
    assert "signed" in (conflict.last_error or "")
    assert got["BE-2026-0414"] == (RecordState.PENDING, "create")  # unchanged rows stay as they were


def test_a_mapping_change_on_a_signed_bsd_is_not_a_conflict(
    pipeline: Pipeline, official_schema: GraphQLSchema
) -> None:
    drop(pipeline, "a.csv", demo_csv())
    ingest(pipeline, threading.Event())
    pretend_synced(pipeline, {"BE-2026-0412": ("f1", "SENT")})
    # The IT team edits the mapping: every payload changes, no record does.
    mapping_path = Path(pipeline.bindings[0].mapping.path)
    text = mapping_path.read_text("utf-8").replace('"Sophie Martin"', '"Sophie Martin-Durand"')
    mapping_path.write_text(text, "utf-8")
    new = Binding(load_mapping(mapping_path, official_schema), pipeline.bindings[0].source)
    pipeline.bindings = [new]
    drop(pipeline, "b.csv", demo_csv())
    counts = ingest(pipeline, threading.Event())
    got = states(pipeline)
    assert got["BE-2026-0412"] == (RecordState.SYNCED, None)  # signed: left alone, not a conflict
    assert got["BE-2026-0413"] == (RecordState.PENDING, "create")
    assert counts["mapping_changed_after_signature"] == 1


def test_a_file_without_a_column_the_mapping_reads_says_which_and_suggests(pipeline: Pipeline) -> None:
    drop(pipeline, "renamed.csv", demo_csv().replace("siret_producteur", "siret_prod", 1))
    counts = ingest(pipeline, threading.Event())
    assert counts["rejected"] == 5
    error = next(r.last_error for r in pipeline.store.records() if r.record_key == "BE-2026-0412") or ""
    assert "renamed.csv:line 2" in error
    assert 'unknown column "siret_producteur" (did you mean "siret_prod"?)' in error
