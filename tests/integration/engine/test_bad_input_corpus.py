"""A bad-input corpus through the whole pipeline: every bad row is rejected with its file, line,
column and reason in the receipt; every good row becomes its BSD; nothing crashes."""

from __future__ import annotations

import csv
import io
import threading
from pathlib import Path

from connector.demo.run import _asset
from connector.service import sync_once
from td_emulator.config import EmulatorConfig
from td_emulator.testing import serve_in_thread
from tests.integration.engine.support import drop, runtime_for
from tests.reference import EMULATOR_WASTE_CODES

GOOD = "BE-2026-0413"


def corpus() -> str:
    lines = _asset("enlevements_mars.csv").decode("utf-8").splitlines()
    header, template = lines[0], next(line for line in lines if line.startswith(GOOD))

    def row(key: str, **changes: str) -> str:
        text = template.replace(GOOD, key)
        for old, new in changes.items():
            text = text.replace(old, new, 1)
        return text

    rows = [
        row("OK-1"),
        row("BAD-DATE", **{"03/03/2026 10:15": "31/02/2026"}),
        row("NEG-WEIGHT", **{";85;": ";-85;"}),
        row("NAN-WEIGHT", **{";85;": ";quatre-vingt;"}),
        row("BAD-SIRET", **{"85243162000123": "85243162000124"}),
        row("BAD-CODE-FORMAT", **{"16 01 07*": "1601*"}),
        row("UNKNOWN-CODE", **{"16 01 07*": "16 01 99*"}),
        row("LONG-NAME", **{"Filtres à huile": "F" * 300}),
        row(""),  # a NULL key
        row("DUP-1"),
        row("DUP-1", **{";85;": ";86;"}),
        row("OK-2"),
        row("STAR-MISSING", **{"16 01 07*": "160107"}),
        row("WRONG-KIND-CODE", **{"16 01 07*": "17 06 05*"}),
        row("BAD-MAIL", **{"marie.dupont@garage-dupont.example": "marie.dupont garage-dupont.example"}),
        row("BAD-PHONE", **{"04 72 00 00 01": "voir contrat"}),
    ]
    return "\n".join([header, *rows]) + "\n"


def test_every_bad_row_is_rejected_with_its_reason_and_the_good_ones_go_through(
    tmp_path: Path,
) -> None:
    mapping = _asset("bsdd_csv.toml").decode("utf-8")
    # A BSDD input has few dates of its own; the receipt's validity date carries the pickup date here
    # so that a bad date in the export goes through the date transform.
    mapping = mapping.replace(
        '"emitter.type" =',
        '"transporter.validityLimit" = { column = "date_enlevement", transforms = ["date"] }\n'
        '"emitter.type" =',
    )
    config = EmulatorConfig(admin_enabled=True, waste_codes_path=EMULATOR_WASTE_CODES)
    with serve_in_thread(config) as served:
        runtime = runtime_for(tmp_path, served.url, mapping_text=mapping)
        drop(tmp_path, "export.csv", corpus())
        try:
            summary = sync_once(runtime, threading.Event())
        finally:
            runtime.close()
    assert all(step["ok"] for step in summary["steps"])
    receipt = next((tmp_path / "inbox").rglob("*.receipt.csv")).read_text("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(receipt), delimiter=";"))
    by_key = {r["key"]: r for r in rows}

    def rejected(key: str, *words: str) -> None:
        assert by_key[key]["status"] == "rejected", by_key[key]
        for word in words:
            assert word in by_key[key]["error"], (key, by_key[key]["error"])

    assert by_key["OK-1"]["remote_status"] == "SEALED"
    assert by_key["OK-2"]["remote_status"] == "SEALED"
    rejected("BAD-DATE", "export.csv:line 3", "date_enlevement", "31/02/2026")
    rejected("NEG-WEIGHT", "export.csv:line 4", "wasteDetails.quantity", "poids_kg")
    rejected("NAN-WEIGHT", "export.csv:line 5", "poids_kg", "quatre-vingt")
    rejected("BAD-SIRET", "export.csv:line 6", "siret_producteur", "Luhn")
    rejected("BAD-CODE-FORMAT", "export.csv:line 7", "code_dechet", "1601*")
    # The nomenclature's checks run offline: the row is named, with its column, before any request.
    rejected("UNKNOWN-CODE", "export.csv:line 8", "code_dechet", '"16 01 99*" is not in the official')
    rejected("STAR-MISSING", "export.csv:line 14", "code_dechet", 'official code "16 01 07*"')
    rejected("WRONG-KIND-CODE", "export.csv:line 15", "code_dechet", "not accepted on a BSDD")
    rejected("BAD-MAIL", "export.csv:line 16", "emitter.company.mail", "email", "not an e-mail address")
    rejected("BAD-PHONE", "export.csv:line 17", "emitter.company.phone", "telephone", "not a phone number")
    rejected("LONG-NAME", "export.csv:line 9", "wasteDetails.name", "designation", "at most 250")
    null_key = [r for r in rows if r["key"].startswith("!") or r["key"] == ""]
    assert null_key
    assert all(r["status"] == "rejected" for r in null_key)
    assert any("DUP-1" in r["key"] or "DUP-1" in (r["error"] or "") for r in rows)
