"""Push against the emulator over HTTP: updates before a signature, conflicts after, a bad token,
dry runs and the creation limit."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.service import run_step, sync_once
from connector.state.store import open_state_store
from td_emulator.config import EmulatorConfig
from td_emulator.testing import ServedEmulator, serve_in_thread
from tests.integration.engine.support import csv_text, drop, fields_sent, runtime_for, states


@pytest.fixture
def emulator() -> Iterator[ServedEmulator]:
    with serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        yield served


def test_a_change_before_signature_updates_the_bsd_and_after_signature_is_a_conflict(
    tmp_path: Path, emulator: ServedEmulator
) -> None:
    runtime = runtime_for(tmp_path, emulator.url)
    try:
        drop(tmp_path, "a.csv", csv_text())
        sync_once(runtime, threading.Event())
        rows = {r.record_key: r for r in runtime.store.records()}
        signed = rows["BE-2026-0412"].readable_id
        assert signed
        emulator.emulator.journal.clear()
        import httpx

        httpx.post(f"{emulator.url}_emulator/bsds/{signed}/sign-emission", json={}).raise_for_status()
        run_step(runtime.pipeline, "track", threading.Event())
        drop(tmp_path, "b.csv", csv_text(**{"1 250,5": "1 300,0", ";85;estimée": ";90;estimée"}))
        sync_once(runtime, threading.Event())
        after = {r.record_key: r for r in runtime.store.records()}
        assert after["BE-2026-0413"].state == "synced"
        assert after["BE-2026-0412"].state == "conflict"
        assert "signed" in (after["BE-2026-0412"].last_error or "")
        sent = fields_sent(emulator)
        assert sent.count("updateForm") == 1  # 0413 only; nothing for the signed 0412
        form = emulator.emulator.store.find(after["BE-2026-0413"].bsd_id or "")
        assert form is not None
        assert form["wasteDetails"]["quantity"] == pytest.approx(0.09)
        assert form["status"] == "SEALED"
    finally:
        runtime.close()


def test_an_unknown_token_pauses_pushing_and_loses_nothing(tmp_path: Path, emulator: ServedEmulator) -> None:
    runtime = runtime_for(tmp_path, emulator.url, token="revoked-token")
    try:
        drop(tmp_path, "a.csv", csv_text())
        run_step(runtime.pipeline, "ingest", threading.Event())
        counts = run_step(runtime.pipeline, "push", threading.Event())
        assert counts["unauthenticated"] >= 1
        assert runtime.pipeline.paused_until is not None
        assert set(states(runtime).values()) == {"pending", "rejected"}
        sent = fields_sent(emulator).count("createForm")
        assert sent == 4  # the four valid records went in one batch; it told us, nothing more was sent
        again = run_step(runtime.pipeline, "push", threading.Event())
        assert again.get("paused") == 1  # no request while paused
        assert fields_sent(emulator).count("createForm") == sent
    finally:
        runtime.close()


def test_dry_run_and_creation_limit(tmp_path: Path, emulator: ServedEmulator) -> None:
    runtime = runtime_for(tmp_path, emulator.url, extra="[safety]\ndry_run = true\n")
    try:
        drop(tmp_path, "a.csv", csv_text())
        sync_once(runtime, threading.Event())
        assert "createForm" not in fields_sent(emulator)
        assert set(states(runtime).values()) == {"pending", "rejected"}
        writeback = run_step(runtime.pipeline, "writeback", threading.Event())
        assert writeback == {"step": "writeback", "ok": True, "would_write": 5}
    finally:
        runtime.close()
    # A dry run writes nothing anywhere: the file is not moved, no receipt, the state store is untouched.
    assert (tmp_path / "inbox" / "a.csv").exists()
    assert not (tmp_path / "inbox" / "processed").exists()
    assert not (tmp_path / "inbox" / "receipts").exists()
    store = open_state_store(f"sqlite:///{tmp_path / 'var' / 'state.db'}")
    try:
        assert store.records() == []
    finally:
        store.close()
    runtime = runtime_for(tmp_path, emulator.url, extra="[safety]\nmax_creations_per_run = 2\n")
    try:
        run_step(runtime.pipeline, "ingest", threading.Event())
        counts = run_step(runtime.pipeline, "push", threading.Event())
        assert counts["created"] == 2
        assert counts["creation_limit_reached"] == 1
        assert fields_sent(emulator).count("createForm") == 2
    finally:
        runtime.close()


def test_in_doubt_creates_are_found_again_when_the_token_is_not_the_emitters(tmp_path: Path) -> None:
    """A collector's token creates BSDDs for its clients: the lookup uses the collector's SIRET."""
    from td_emulator.config import FaultConfig

    faults = FaultConfig(drop_after_commit_probability=1.0)
    with serve_in_thread(EmulatorConfig(admin_enabled=True, faults=faults)) as served:
        runtime = runtime_for(tmp_path, served.url, token="demo-token-destination")
        runtime.pipeline.options.reconcile_grace_seconds = 0
        try:
            drop(tmp_path, "a.csv", csv_text())
            run_step(runtime.pipeline, "ingest", threading.Event())
            # Every mutation is committed by the server and its answer lost: the 4 creates are in
            # doubt and wait for the next pass.
            first = run_step(runtime.pipeline, "push", threading.Event())
            assert first["in_doubt"] == 4
            served.emulator.faults = FaultConfig()
            second = run_step(runtime.pipeline, "push", threading.Event())
            assert second["created_adopted"] == 4
            assert second["sealed"] == 4
        finally:
            runtime.close()
        forms = list(served.emulator.store.newest_first("BSDD"))
    assert len(forms) == 4  # found again, never created twice
    assert {f["status"] for f in forms} == {"SEALED"}


def test_one_refused_look_up_never_stops_the_others(tmp_path: Path) -> None:
    """Four creates in doubt; the look-up of one is refused by the server (the company it names
    left the token): it waits, in doubt, with the reason; the three others are found and sealed in
    the same pass, and nothing is created twice."""
    import json

    from sqlalchemy import select

    from connector.domain.demo_companies import DEMO_COMPANIES
    from connector.state.models import Record
    from td_emulator.config import FaultConfig

    faults = FaultConfig(drop_after_commit_probability=1.0)
    with serve_in_thread(EmulatorConfig(admin_enabled=True, faults=faults)) as served:
        runtime = runtime_for(tmp_path, served.url)
        runtime.pipeline.options.reconcile_grace_seconds = 0
        try:
            drop(tmp_path, "a.csv", csv_text())
            run_step(runtime.pipeline, "ingest", threading.Event())
            assert run_step(runtime.pipeline, "push", threading.Event())["in_doubt"] == 4
            served.emulator.faults = FaultConfig()
            # One record now names only a company the token's list says it holds, but which the
            # platform refuses (the account left it): its look-up fails; the others are found.
            outsider = DEMO_COMPANIES["outsider"].siret
            directory = runtime.pipeline.companies
            directory.org_ids = frozenset({*(directory.org_ids or ()), outsider})
            directory.read_at = directory.clock()

            def only_outsider(item: object) -> object:
                if isinstance(item, dict):
                    return {k: outsider if k == "siret" else only_outsider(v) for k, v in item.items()}
                return [only_outsider(v) for v in item] if isinstance(item, list) else item

            with runtime.store.session() as session:
                row = session.scalars(select(Record).where(Record.record_key == "BE-2026-0412")).one()
                row.payload = json.dumps(only_outsider(json.loads(row.payload or "{}")))
                row.emitter_siret = outsider
            second = run_step(runtime.pipeline, "push", threading.Event())
            assert second["ok"] is True
            assert second["created_adopted"] == 3
            assert second["sealed"] == 3
            rows = {r.record_key: r for r in runtime.store.records()}
            held = rows["BE-2026-0412"]
            assert held.state in ("in_flight", "rejected")  # waiting, never resent blindly
            assert held.intent_op == "create"
            assert held.last_error
            forms = served.emulator.store.newest_first("BSDD")
            assert [f.get("customId") for f in forms].count("BE-2026-0412") == 1
            assert {rows[k].state for k in ("BE-2026-0413", "BE-2026-0414", "BE-2026-0416")} == {"synced"}
        finally:
            runtime.close()
