"""A lookup table's change re-maps stored records, but never releases one held as a conflict."""

from __future__ import annotations

import threading
from pathlib import Path

from connector.demo.run import _asset
from connector.service import sync_once
from td_emulator.config import EmulatorConfig
from td_emulator.testing import serve_in_thread
from tests.integration.engine.support import csv_text, drop, runtime_for

CONTACTS = "cap;who\nCAP-2026-0042;{who}\nCAP-2026-0043;{who}\n"


def _mapping() -> str:
    mapping = _asset("bsdd_csv.toml").decode("utf-8")
    mapping = mapping.replace('"recipient.company.contact" = { const = "Sophie Martin" }',
                              '"recipient.company.contact" = { lookup = "ctc", by = "cap", column = "who" }')
    return mapping.replace("[fields]", '[lookups.ctc]\nfile = "ctc.csv"\nkey = "cap"\n\n[fields]')


def test_a_key_on_two_rows_stays_held_when_a_lookup_table_changes(tmp_path: Path) -> None:
    (tmp_path / "ctc.csv").write_text(CONTACTS.format(who="Sophie Martin"), "utf-8")
    header, first = csv_text().splitlines()[:2]
    (tmp_path / "inbox").mkdir()
    drop(tmp_path, "a.csv", f"{header}\n{first}\n")
    with serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        runtime = runtime_for(tmp_path, served.url, mapping_text=_mapping())
        try:
            sync_once(runtime, threading.Event())
            (record,) = runtime.store.records()
            key, bsd_id = record.record_key, record.bsd_id
            assert record.state == "synced"
            # The same key on two rows of a new file: held, nothing sent.
            first_new = first.replace("1 250,5", "900")
            drop(tmp_path, "b.csv", f"{header}\n{first_new}\n{first_new.replace('900', '800')}\n")
            sync_once(runtime, threading.Event())
            (held,) = runtime.store.records()
            assert held.state == "conflict"
            served.emulator.journal.clear()
            # The contacts table changes: before, the record was re-mapped from the values read
            # before the clash, released, and those stale values sent as an update.
            (tmp_path / "ctc.csv").write_text(CONTACTS.format(who="Sophie M."), "utf-8")
            sync_once(runtime, threading.Event())
            (after,) = runtime.store.records()
        finally:
            runtime.close()
    assert (after.state, after.bsd_id) == ("conflict", bsd_id)
    assert after.payload_hash == held.payload_hash
    assert key in (after.last_error or "")
    sent = [f for e in served.emulator.journal for op in e["operations"] for f in op["fields"]]
    assert "updateForm" not in sent
