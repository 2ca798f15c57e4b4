"""Key reuse is a decision: duplicates of a key or customId are held, and a key that comes back
with another emitter or waste after sealing is a conflict (unless the mapping allows updates)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.demo.run import _asset
from connector.runtime import Runtime
from connector.service import sync_once
from td_emulator.config import EmulatorConfig
from td_emulator.testing import ServedEmulator, serve_in_thread
from tests.integration.engine.support import csv_text, drop, runtime_for


@pytest.fixture
def emulator() -> Iterator[ServedEmulator]:
    with serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        yield served


def sync(runtime: Runtime) -> None:
    sync_once(runtime, threading.Event())


def records(runtime: Runtime) -> dict[str, tuple[str, str | None]]:
    return {r.record_key: (r.state, r.last_error) for r in runtime.store.records()}


def mutations(emulator: ServedEmulator) -> list[str]:
    mutating = ("createForm", "updateForm", "markAsSealed")
    journal = emulator.emulator.journal
    return [f for e in journal for op in e["operations"] for f in op["fields"] if f in mutating]


def receipt(tmp_path: Path, unit: str) -> str:
    return (tmp_path / "inbox" / "receipts" / f"{unit}.receipt.csv").read_text("utf-8-sig")


def test_a_key_back_with_another_waste_after_sealing_is_a_conflict_and_nothing_is_sent(
    tmp_path: Path, emulator: ServedEmulator
) -> None:
    runtime = runtime_for(tmp_path, emulator.url)
    try:
        drop(tmp_path, "monday.csv", csv_text())
        sync(runtime)
        sent_before = len(mutations(emulator))
        # A later export reuses slip number BE-2026-0413 for another producer's batteries.
        reused = csv_text(**{"16 01 07*": "16 06 01*"})
        drop(tmp_path, "friday.csv", reused)
        sync(runtime)
        state, error = records(runtime)["BE-2026-0413"]
        assert state == "conflict"
        assert "waste code '16 01 07*' → '16 06 01*'" in (error or "")
        assert 'lifecycle.key_reuse = "update"' in (error or "")
        assert len(mutations(emulator)) == sent_before  # nothing sent
        bsdds = emulator.emulator.store.newest_first("BSDD")
        form = next(f for f in bsdds if f["customId"] == "BE-2026-0413")
        assert form["wasteDetails"]["code"] == "16 01 07*"
        assert "BE-2026-0413;" in receipt(tmp_path, "friday.csv")
        assert ";conflict;" in receipt(tmp_path, "friday.csv")
        # The export is corrected back: the record is the BSD's again (no update needed beyond the data).
        drop(tmp_path, "friday2.csv", csv_text())
        sync(runtime)
        assert records(runtime)["BE-2026-0413"][0] == "synced"
    finally:
        runtime.close()


def test_the_mapping_may_allow_key_reuse_before_signature(tmp_path: Path, emulator: ServedEmulator) -> None:
    mapping = _asset("bsdd_csv.toml").decode().replace("[lifecycle]\n", '[lifecycle]\nkey_reuse = "update"\n')
    runtime = runtime_for(tmp_path, emulator.url, mapping_text=mapping)
    try:
        drop(tmp_path, "monday.csv", csv_text())
        sync(runtime)
        drop(tmp_path, "friday.csv", csv_text(**{"16 01 07*": "16 06 01*"}))
        sync(runtime)
        assert records(runtime)["BE-2026-0413"][0] == "synced"
    finally:
        runtime.close()
    form = next(f for f in emulator.emulator.store.newest_first("BSDD") if f["customId"] == "BE-2026-0413")
    assert form["wasteDetails"]["code"] == "16 06 01*"


def test_two_rows_with_the_same_key_are_both_held_and_named(tmp_path: Path, emulator: ServedEmulator) -> None:
    lines = csv_text().splitlines()
    twin = lines[2].replace("Filtres à huile", "Filtres à gazole")
    runtime = runtime_for(tmp_path, emulator.url)
    try:
        drop(tmp_path, "a.csv", "\n".join([*lines, twin]) + "\n")
        sync(runtime)
        state, error = records(runtime)["BE-2026-0413"]
    finally:
        runtime.close()
    assert state == "conflict"
    assert "a.csv:line 3" in (error or "")
    assert "a.csv:line 7" in (error or "")
    customs = Counter(f["customId"] for f in emulator.emulator.store.newest_first("BSDD"))
    assert "BE-2026-0413" not in customs
    assert sum(customs.values()) == 3
    assert "BE-2026-0413;;;conflict;" in receipt(tmp_path, "a.csv")


def test_two_rows_with_the_same_customid_are_both_held_then_released_when_one_is_fixed(
    tmp_path: Path, emulator: ServedEmulator
) -> None:
    # Technical key (n_bon + cap), business customId (n_bon): the ERP reused a slip number.
    mapping = _asset("bsdd_csv.toml").decode().replace('key = ["n_bon"]', 'key = ["n_bon", "cap"]')
    lines = csv_text().splitlines()
    twin = lines[2].replace("CAP-2026-0043", "CAP-2026-0999")
    runtime = runtime_for(tmp_path, emulator.url, mapping_text=mapping)
    try:
        drop(tmp_path, "a.csv", "\n".join([*lines, twin]) + "\n")
        sync(runtime)
        got = records(runtime)
        first, second = got["BE-2026-0413|CAP-2026-0043"], got["BE-2026-0413|CAP-2026-0999"]
        assert first[0] == second[0] == "conflict"
        for _, error in (first, second):
            assert "BE-2026-0413|CAP-2026-0043 (inbox/a.csv:line 3)" in (error or "")
            assert "BE-2026-0413|CAP-2026-0999 (inbox/a.csv:line 7)" in (error or "")
        assert "BE-2026-0413" not in {f["customId"] for f in emulator.emulator.store.newest_first("BSDD")}

        # Across the source's history too: a later file reusing BE-2026-0412 for another CAP.
        reused = lines[1].replace("CAP-2026-0042", "CAP-2026-0777")
        drop(tmp_path, "b.csv", "\n".join([lines[0], reused]) + "\n")
        sync(runtime)
        state, error = records(runtime)["BE-2026-0412|CAP-2026-0777"]
        assert state == "conflict"
        assert "already used by record BE-2026-0412|CAP-2026-0042" in (error or "")

        # The second row gets its own slip number: the first is released and sent.
        fixed = twin.replace("BE-2026-0413", "BE-2026-0499")
        drop(tmp_path, "c.csv", "\n".join([lines[0], fixed]) + "\n")
        sync(runtime)
    finally:
        runtime.close()
    customs = Counter(f["customId"] for f in emulator.emulator.store.newest_first("BSDD"))
    assert customs["BE-2026-0412"] == 1
    assert customs["BE-2026-0499"] == 1
