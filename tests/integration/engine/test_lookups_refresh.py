"""A small ERP with clients and sites in their own tables, joined through lookups.

A correction made only in the ``clients`` table (an e-mail) does not move the orders' cursor; the
connector must still send it, as an update of the affected BSDs only, before any signature.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from connector.service import sync_once
from td_emulator.config import EmulatorConfig
from td_emulator.testing import serve_in_thread
from tests.integration.engine.support import runtime_for

ERP = """
CREATE TABLE clients (code TEXT PRIMARY KEY, siret TEXT, nom TEXT, adresse TEXT, contact TEXT,
                      tel TEXT, mail TEXT);
CREATE TABLE sites (code TEXT PRIMARY KEY, client TEXT, nom TEXT, adresse TEXT, cp TEXT, ville TEXT);
CREATE TABLE bons (id_bon INTEGER PRIMARY KEY, num_bon TEXT, code_client TEXT, code_site TEXT,
                   code_dechet TEXT, poids_kg REAL, cond TEXT, nb INTEGER, updated_at TEXT);
INSERT INTO clients VALUES
 ('C1', '85243162000123', 'Garage Dupont & Fils', '12 rue des Lilas, 69003 Lyon', 'Marie Dupont',
  '0472000001', 'marie@garage.example'),
 ('C2', '79320856000185', 'Casse Auto Villeurbanne', '8 rue de la Casse, 69100 Villeurbanne',
  'Paul Girard', '0472000004', 'paul@casse.example');
INSERT INTO sites VALUES ('S1', 'C1', 'Atelier Lilas', '12 rue des Lilas', '69003', 'Lyon'),
                         ('S2', 'C2', 'Parc Nord', '1 rue du Parc', '69100', 'Villeurbanne');
"""

MAPPING = """
version = 1
name = "erp-lookups"
kind = "BSDD"
[source]
type = "sql"
url = "sqlite:///erp.sqlite"
table = "bons"
key = ["id_bon"]
cursor_column = "updated_at"
lag_seconds = 0
[lifecycle]
seal = true
[lookups.clients]
url = "sqlite:///erp.sqlite"
query = "SELECT code, siret, nom, adresse, contact, tel, mail FROM clients"
key = "code"
[lookups.sites]
url = "sqlite:///erp.sqlite"
query = "SELECT code, nom, adresse, cp, ville FROM sites"
key = "code"
[fields]
"customId" = "num_bon"
"emitter.type" = { const = "PRODUCER" }
"emitter.company.siret" = { lookup = "clients", by = "code_client", column = "siret", required = true }
"emitter.company.name" = { lookup = "clients", by = "code_client", column = "nom" }
"emitter.company.address" = { lookup = "clients", by = "code_client", column = "adresse" }
"emitter.company.contact" = { lookup = "clients", by = "code_client", column = "contact" }
"emitter.company.phone" = { lookup = "clients", by = "code_client", column = "tel" }
"emitter.company.mail" = { lookup = "clients", by = "code_client", column = "mail" }
"emitter.workSite.name" = { lookup = "sites", by = "code_site", column = "nom" }
"emitter.workSite.city" = { lookup = "sites", by = "code_site", column = "ville" }
"recipient.company.siret" = { const = "44019372000255" }
"recipient.company.name" = { const = "Centre de Traitement Saint-Fons" }
"recipient.company.address" = { const = "Zone industrielle, 69190 Saint-Fons" }
"recipient.company.contact" = { const = "Sophie Martin" }
"recipient.company.phone" = { const = "04 72 00 00 03" }
"recipient.company.mail" = { const = "accueil@ctsf.example" }
"recipient.processingOperation" = { const = "R 9" }
"recipient.cap" = { const = "CAP-1" }
"wasteDetails.code" = { column = "code_dechet", transforms = ["waste_code"] }
"wasteDetails.name" = { const = "Huiles usagées" }
"wasteDetails.quantity" = { column = "poids_kg", transforms = ["kg_to_t"] }
"wasteDetails.quantityType" = { const = "REAL" }
"wasteDetails.isSubjectToADR" = { const = false }
"wasteDetails.consistences" = { const = "LIQUID" }
"wasteDetails.pop" = { const = false }
"wasteDetails.packagingInfos" = { items = [{ type = "cond", quantity = "nb" }] }
"""

CLIENTS_PER_ORDER = ["C1", "C2", "C1", "C2", "C1", "C1"]


def _erp(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(ERP)
        db.executemany(
            "INSERT INTO bons VALUES (?, ?, ?, ?, '130205*', ?, 'FUT', 2, '2026-11-20 10:00:00')",
            [(100 + i, f"B{100 + i}", client, "S1" if client == "C1" else "S2", 300 + 10 * i)
             for i, client in enumerate(CLIENTS_PER_ORDER)])


def _sync(runtime) -> dict:
    return sync_once(runtime, threading.Event())


def test_client_mail_changed_in_its_table_only_updates_its_bsds(tmp_path: Path) -> None:
    _erp(tmp_path / "erp.sqlite")
    with serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        runtime = runtime_for(tmp_path, served.url, token="demo-token-destination", mapping_text=MAPPING)
        try:
            first = _sync(runtime)
            assert {r.state for r in runtime.store.records()} == {"synced"}, first
            by_key = {r.record_key: r for r in runtime.store.records()}
            ids = {key: row.bsd_id for key, row in by_key.items()}
            assert len(ids) == 6
            bsd = served.emulator.store.get("BSDD", ids["100"])
            assert bsd is not None
            journal_before = len(served.emulator.journal)

            # Nothing changed: nothing is sent again (the tables are re-read, their fingerprint is equal).
            _sync(runtime)
            assert _mutations(served, journal_before) == []

            with sqlite3.connect(tmp_path / "erp.sqlite") as db:
                db.execute("UPDATE clients SET mail = 'compta@garage.example' WHERE code = 'C1'")
            journal_before = len(served.emulator.journal)
            second = _sync(runtime)
            updated = _mutations(served, journal_before)
            # Only C1's four BSDs, each once, as updates (they are sealed, not signed).
            assert sorted(updated) == ["updateForm"] * 4, second
            c1_keys = [str(100 + i) for i, c in enumerate(CLIENTS_PER_ORDER) if c == "C1"]
            for key in c1_keys:
                stored = served.emulator.store.get("BSDD", ids[key])
                assert stored is not None
                assert _mail(stored) == "compta@garage.example"
            for key in set(ids) - set(c1_keys):
                stored = served.emulator.store.get("BSDD", ids[key])
                assert stored is not None
                assert _mail(stored) == "paul@casse.example"
            assert {r.state for r in runtime.store.records()} == {"synced"}

            # A client removed from the reference table: its orders are rejected, naming the key.
            with sqlite3.connect(tmp_path / "erp.sqlite") as db:
                db.execute("DELETE FROM clients WHERE code = 'C2'")
            _sync(runtime)
            rejected = {r.record_key: r.last_error for r in runtime.store.records() if r.state == "rejected"}
            assert set(rejected) == {"101", "103"}
            expected = ('field "emitter.company.siret" (lookup "clients" by column "code_client", '
                        'column "siret"): "C2" is not in lookup "clients"')
            assert expected in rejected["101"]
        finally:
            runtime.close()


def _mutations(served, start: int) -> list[str]:
    return [f for e in list(served.emulator.journal)[start:] for op in e["operations"] for f in op["fields"]
            if not f.startswith(("form", "bsd", "me", "company"))]


def _mail(bsd: dict) -> str | None:
    emitter = bsd.get("emitter") or {}
    company = emitter.get("company") or {}
    return company.get("mail") or bsd.get("emitterCompanyMail")
