"""``td-connector init`` and ``td-connector explain`` as a new user runs them, against the emulator."""

from __future__ import annotations

import json
import re
import shutil
import threading
from pathlib import Path

import pytest

from connector.cli import main
from connector.runtime import build_runtime
from connector.service import sync_once
from connector.settings import load_settings
from td_emulator.config import EmulatorConfig
from td_emulator.testing import serve_in_thread

MAPPINGS = Path(__file__).resolve().parents[3] / "mappings"

FILLS = {
    '"emitter.type" = "TODO"': '"emitter.type" = { const = "PRODUCER" }',
    '"recipient.company.name" = "TODO"': '"recipient.company.name" = { const = "CTSF" }',
    '"recipient.company.address" = "TODO"': '"recipient.company.address" = { const = "ZI Saint-Fons" }',
    '"recipient.company.contact" = "TODO"': '"recipient.company.contact" = { const = "Sophie Martin" }',
    '"recipient.company.phone" = "TODO"': '"recipient.company.phone" = { const = "04 72 00 00 03" }',
    '"recipient.company.mail" = "TODO"': '"recipient.company.mail" = { const = "accueil@ctsf.example" }',
    '"wasteDetails.quantityType" = "TODO"': '"wasteDetails.quantityType" = { const = "ESTIMATED" }',
    '"wasteDetails.pop" = "TODO"': '"wasteDetails.pop" = { const = false }',
    '"wasteDetails.consistences" = "TODO"':
        '"wasteDetails.consistences" = { column = "etat_physique", transforms = [{ name = "map", values = '
        '{ solide = "SOLID", liquide = "LIQUID" } }] }',
}


def test_init_draft_then_check_lists_what_is_left_then_it_runs(tmp_path: Path, capsys) -> None:
    shutil.copy(MAPPINGS / "data" / "bsdd_enlevements.csv", tmp_path / "bsdd_enlevements.csv")
    assert main(["init", "--csv", str(tmp_path / "bsdd_enlevements.csv"), "--out", str(tmp_path),
                 "--name", "garage"]) == 0
    draft = (tmp_path / "garage.toml").read_text("utf-8")
    # Matches found by their values: SIRETs (Luhn), waste codes, weights, operation codes, dates.
    assert '"emitter.company.siret" = { column = "siret_producteur", transforms = ["siret"] }' in draft
    assert '"recipient.company.siret" = { column = "siret_destinataire", transforms = ["siret"] }' in draft
    assert '"wasteDetails.code" = { column = "code_dechet", transforms = ["waste_code"] }' in draft
    assert '"wasteDetails.quantity" = { column = "poids_kg", transforms = ["decimal", "kg_to_t"] }' in draft
    assert ('"recipient.processingOperation" = { column = "code_traitement", '
            'transforms = ["operation_code"] }') in draft
    assert 'column = "date_enlevement"\ncheck = "date"' in draft
    assert 'key = ["n_bon"]' in draft
    capsys.readouterr()

    config = tmp_path / "td-connector.toml"
    assert main(["check", "--offline", "-c", str(config)]) == 78
    left = re.findall(r'fields\."([^"]+)": still to fill', capsys.readouterr().err)
    assert left == [key.split('"')[1] for key in FILLS]

    for todo, value in FILLS.items():
        draft = draft.replace(todo, value)
    draft = draft.replace('delimiter = ";"', 'delimiter = ";"\nstable_seconds = 0')
    (tmp_path / "garage.toml").write_text(draft, "utf-8")
    assert main(["check", "--offline", "-c", str(config)]) == 0
    with serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        text = config.read_text("utf-8").replace("https://api.sandbox.trackdechets.beta.gouv.fr/", served.url)
        config.write_text(text, "utf-8")
        settings = load_settings(config, env={"TDC_TRACKDECHETS__TOKEN": "demo-token-producer-0001"})
        runtime = build_runtime(settings, tmp_path)
        try:
            sync_once(runtime, threading.Event())
            states = {r.record_key: (r.state, r.remote_status, r.last_error) for r in runtime.store.records()}
        finally:
            runtime.close()
    assert len(states) == 3
    assert set(states.values()) == {("synced", "SEALED", None)}, states


@pytest.fixture
def erp_workdir(tmp_path: Path) -> Path:
    shutil.copytree(MAPPINGS / "data", tmp_path / "data")
    text = (MAPPINGS / "bsdd_erp_csv.toml").read_text("utf-8")
    text = text.replace('delimiter = ";"', 'delimiter = ";"\nstable_seconds = 0', 1)
    (tmp_path / "m.toml").write_text(text, "utf-8")
    return tmp_path


def _explain(config: Path, key: str, capsys) -> dict:
    capsys.readouterr()
    assert main(["explain", "-c", str(config), "--key", key, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_explain_follows_one_record_from_columns_to_operations(erp_workdir: Path, capsys) -> None:
    with serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        config = erp_workdir / "config.toml"
        config.write_text(f'[trackdechets]\nurl = "{served.url}"\n[state]\ndir = "var"\n'
                          '[mappings]\npaths = ["m.toml"]\n', "utf-8")
        before = _explain(config, "1002", capsys)
        assert before["read_from"] == "the source"
        assert before["operations"] == ["createForm (a new BSD)", "markAsSealed (seal = true)"]
        fields = {f["field"]: f for f in before["fields"]}
        quantity = fields["wasteDetails.quantity"]
        assert (quantity["source"], quantity["raw"], quantity["final"]) == ('column "poids_kg"', "410", 0.41)
        assert [s["transform"] for s in quantity["steps"]] == ["decimal", "kg_to_t"]
        assert fields["transporter.company.siret"]["left_out"] is True
        assert fields["transporter.company.siret"]["conditions"] == [
            {"condition": 'column "siret_transporteur" is filled', "holds": False}]
        mail = fields["emitter.company.mail"]
        assert mail["source"] == 'lookup "clients" by column "code_client", column "mail"'
        assert {r["rule"]: r["verdict"] for r in before["rules"]}['"pickup date"'] == "ok"
        assert before["lookups_used"] == ["clients"]
        assert before["checks"] == []

        settings = load_settings(config, env={"TDC_TRACKDECHETS__TOKEN": "demo-token-destination"})
        runtime = build_runtime(settings, erp_workdir)
        try:
            sync_once(runtime, threading.Event())
        finally:
            runtime.close()
        after = _explain(config, "1002", capsys)
        # The file was processed and moved: the values come from the state store.
        assert after["read_from"].startswith("the state store")
        assert len(after["operations"]) == 1
        assert after["operations"][0].startswith("none: BSD BSD-")
        assert after["operations"][0].endswith("is up to date (state synced)")

        clients = erp_workdir / "data" / "erp_clients.csv"
        clients.write_text(clients.read_text("utf-8").replace("contact@casse-villeurbanne.example",
                                                              "accueil@casse.example"), "utf-8")
        changed = _explain(config, "1002", capsys)
        assert changed["operations"][0].startswith("updateForm of BSD BSD-")
        finals = {f["field"]: f["final"] for f in changed["fields"]}
        assert finals["emitter.company.mail"] == "accueil@casse.example"


def test_explain_shows_a_failed_rule_and_unknown_key(erp_workdir: Path, capsys) -> None:
    bons = erp_workdir / "data" / "erp_bons.csv"
    bons.write_text(bons.read_text("utf-8").replace("03/11/2025 10:15", "31/02/2026"), "utf-8")
    config = erp_workdir / "config.toml"
    config.write_text('[trackdechets]\nurl = "http://127.0.0.1:9/"\n[state]\ndir = "var"\n'
                      '[mappings]\npaths = ["m.toml"]\n', "utf-8")
    report = _explain(config, "1002", capsys)
    failed = [r for r in report["rules"] if r["verdict"] == "failed"]
    assert [(r["rule"], r["value"]) for r in failed] == [('"pickup date"', "31/02/2026")]
    assert report["operations"] == ["none: the record is rejected (see problems)"]
    assert report["checks"] is None
    assert main(["explain", "-c", str(config), "--key", "nope"]) == 1
    assert "no record with key 'nope'" in capsys.readouterr().out


def test_explain_text_output_reads_top_down(erp_workdir: Path, capsys) -> None:
    config = erp_workdir / "config.toml"
    config.write_text('[trackdechets]\nurl = "http://127.0.0.1:9/"\n[state]\ndir = "var"\n'
                      '[mappings]\npaths = ["m.toml"]\n', "utf-8")
    capsys.readouterr()
    assert main(["explain", "-c", str(config), "--key", "1002", "--mapping", "bsdd-collector-erp"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("bsdd-collector-erp / 1002  (data/erp_bons.csv:line 3; read from the source)\n")
    order = ["\nRules\n", "\nFields\n", "\nChecks\n", "\nLookups used: clients\n", "\nOperations\n"]
    assert [text.index(part) for part in order] == sorted(text.index(part) for part in order)
    quantity = ('  wasteDetails.quantity  <- column "poids_kg"\n'
                '      raw "410" -> decimal "410" -> kg_to_t "0.410" -> final 0.41\n')
    assert quantity in text
    assert '  transporter.customInfo  <- column "commentaire_transport"\n      LEFT OUT: when column ' \
           '"siret_transporteur" is filled\n' in text
    assert "  createForm (a new BSD)\n  markAsSealed (seal = true)\n" in text
