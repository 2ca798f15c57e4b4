"""A CSV drop folder whose state store is lost: push refuses to create, rebuild-state adopts, no
duplicate; and a new install is never blocked."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connector.engine.rebuild import rebuild_state
from connector.runtime import Runtime
from connector.service import sync_once
from connector.state.identity import SOURCE_MARKER
from td_emulator.config import EmulatorConfig
from td_emulator.testing import ServedEmulator, serve_in_thread
from tests.integration.engine.support import csv_text, drop, runtime_for

GOOD = {"BE-2026-0412", "BE-2026-0413", "BE-2026-0414", "BE-2026-0416"}


@pytest.fixture
def emulator() -> Iterator[ServedEmulator]:
    with serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        yield served


def forms(emulator: ServedEmulator) -> Counter[str]:
    return Counter(f.get("customId") for f in emulator.emulator.store.newest_first("BSDD"))


def sync(runtime: Runtime) -> dict[str, dict[str, object]]:
    summary = sync_once(runtime, threading.Event())
    return {s["step"]: s for s in summary["steps"]}


def lose_state(tmp_path: Path) -> None:
    for path in (tmp_path / "var").glob("state.db*"):
        path.unlink()


def test_a_new_install_creates_at_once_and_leaves_markers(tmp_path: Path, emulator: ServedEmulator) -> None:
    runtime = runtime_for(tmp_path, emulator.url)
    try:
        drop(tmp_path, "a.csv", csv_text())
        steps = sync(runtime)
    finally:
        runtime.close()
    assert steps["push"]["ok"] is True
    assert forms(emulator) == Counter(dict.fromkeys(GOOD, 1))
    receipts_marker = json.loads((tmp_path / "inbox" / "receipts" / SOURCE_MARKER).read_text("utf-8"))
    store_marker = json.loads((tmp_path / "var" / "state-identity.json").read_text("utf-8"))
    assert receipts_marker["identity"] == store_marker["identity"]
    assert receipts_marker["generation"] >= 1


def test_a_deleted_state_store_refuses_to_create_until_rebuilt(
    tmp_path: Path, emulator: ServedEmulator
) -> None:
    runtime = runtime_for(tmp_path, emulator.url)
    try:
        drop(tmp_path, "a.csv", csv_text())
        sync(runtime)
    finally:
        runtime.close()
    lose_state(tmp_path)
    # The ERP sends the same orders again, corrected, and a new one.
    new_order = csv_text().splitlines()[1].replace("BE-2026-0412", "BE-2026-0499")
    corrected = csv_text(**{"Filtres à huile;85;": "Filtres à huile usagés;90;"}) + new_order + "\n"
    drop(tmp_path, "b.csv", corrected)
    runtime = runtime_for(tmp_path, emulator.url)
    try:
        steps = sync(runtime)
        assert steps["push"]["ok"] is False
        assert "rebuild-state" in str(steps["push"]["error"])
        assert "names state store" in str(steps["push"]["error"])
        assert forms(emulator) == Counter(dict.fromkeys(GOOD, 1))  # nothing created
        assert "names state store" in (runtime.store.report().not_trusted or "")
        assert steps["ingest"]["ok"]
        assert steps["writeback"]["ok"]

        dry = rebuild_state(runtime.pipeline, since=datetime.now(UTC) - timedelta(days=1), dry_run=True)
        assert {k for _, k, _ in dry.adopted} == GOOD
        assert [k for _, k in dry.to_create] == ["BE-2026-0499"]
        assert sync(runtime)["push"]["ok"] is False  # a dry run trusts nothing

        report = rebuild_state(runtime.pipeline, since=datetime.now(UTC) - timedelta(days=1), dry_run=False)
        assert report.trusted
        assert runtime.store.report().not_trusted is None
        assert {k for _, k, _ in report.adopted} == GOOD
        assert report.rewritten == 1  # the BSD of the corrected weight is behind its record: updated
        steps = sync(runtime)
        assert steps["push"]["ok"] is True, steps["push"]
        assert steps["push"].get("created") == 1
        assert steps["push"].get("updated") == 1
    finally:
        runtime.close()
    assert forms(emulator) == Counter(dict.fromkeys([*GOOD, "BE-2026-0499"], 1))
    sent = {f["customId"]: f["wasteDetails"] for f in emulator.emulator.store.newest_first("BSDD")}
    assert sent["BE-2026-0413"]["name"] == "Filtres à huile usagés"
    assert sent["BE-2026-0413"]["quantity"] == pytest.approx(0.09)


def test_receipts_naming_a_bsd_reveal_a_lost_store_without_any_marker(
    tmp_path: Path, emulator: ServedEmulator
) -> None:
    """An install from before the markers: the receipt of the re-dropped file is the evidence."""
    runtime = runtime_for(tmp_path, emulator.url)
    try:
        drop(tmp_path, "a.csv", csv_text())
        sync(runtime)
    finally:
        runtime.close()
    lose_state(tmp_path)
    (tmp_path / "var" / "state-identity.json").unlink()
    (tmp_path / "inbox" / "receipts" / SOURCE_MARKER).unlink()
    drop(tmp_path, "a.csv", csv_text(**{"Filtres à huile": "Filtres"}))
    runtime = runtime_for(tmp_path, emulator.url)
    try:
        steps = sync(runtime)
    finally:
        runtime.close()
    assert steps["push"]["ok"] is False
    assert "already carry a BSD id in their source" in str(steps["push"]["error"])
    assert forms(emulator) == Counter(dict.fromkeys(GOOD, 1))
