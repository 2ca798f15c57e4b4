"""``td-connector init``'s draft: columns recognised by their values, and a draft that always loads."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from connector.cli import main
from connector.domain.kinds import KindName
from connector.errors import MappingError
from connector.mapping import parse_mapping
from connector.mapping.compiler import compile_mapping
from connector.mapping.draft import draft_mapping, profile_column

COLUMNS = ["ref", "siret_client", "code_dechet", "poids_kg", "date_collecte", "mail_client", "operation",
           "adr"]
ROWS = [
    {"ref": "A1", "siret_client": "852 431 620 00123", "code_dechet": "130205*", "poids_kg": "12,5",
     "date_collecte": "03/03/2026", "mail_client": "a@b.example", "operation": "R9", "adr": "oui"},
    {"ref": "A2", "siret_client": "79320856000185", "code_dechet": "16 01 07*", "poids_kg": "8",
     "date_collecte": "2026-03-04", "mail_client": "", "operation": "D 10", "adr": "non"},
]


@pytest.mark.parametrize(("values", "expected"), [
    (["852 431 620 00123", "44019372000255"], "siret"),
    (["85243162000124"], "number"),                 # 14 digits, Luhn fails: not a SIRET
    (["130205*", "16 01 07"], "waste_code"),
    (["03/03/2026 08:30", "2026-03-04"], "date"),
    (["1 250,5", "85"], "number"),
    (["a@b.example"], "mail"),
    (["R9", "D 10"], "operation"),
    (["oui", "non", "x"], "bool"),
    (["FUT", "GRV"], None),
    (["", " "], None),
])
def test_columns_are_recognised_by_their_values(values, expected):
    assert profile_column("c", values).looks_like == expected


def test_unique_column_becomes_the_key_and_suggestions_follow_values(schema):
    text = draft_mapping(name="d", kind=KindName.BSDD, schema=schema, columns=COLUMNS, rows=ROWS,
                         source_toml='[source]\ntype = "csv"\nfolder = "in"')
    assert 'key = ["ref"]' in text
    assert '"emitter.company.siret" = { column = "siret_client", transforms = ["siret"] }' in text
    assert '"wasteDetails.quantity" = { column = "poids_kg", transforms = ["decimal", "kg_to_t"] }' in text
    assert '"emitter.company.mail" = "mail_client"' in text
    assert '"wasteDetails.isSubjectToADR" = { column = "adr", transforms = ["bool"] }' in text
    assert '"recipient.cap" = "TODO"' in text
    assert '[[rules]]\nname = "date_collecte"\ncolumn = "date_collecte"\ncheck = "date"' in text


@pytest.mark.parametrize("kind", list(KindName))
def test_every_kind_draft_loads_with_only_todos_left(kind, schema):
    text = draft_mapping(name="d", kind=kind, schema=schema, columns=COLUMNS, rows=ROWS,
                         source_toml='[source]\ntype = "csv"\nfolder = "in"')
    spec = parse_mapping(text, path="d.toml")
    with pytest.raises(MappingError) as caught:
        compile_mapping(spec, schema, path="d.toml")
    assert caught.value.problems
    assert all("still to fill" in p for p in caught.value.problems), caught.value.problems
    filled = text.replace('"TODO"', '"ref"')
    compile_mapping(parse_mapping(filled, path="d.toml"), schema, path="d.toml")


def test_init_from_an_sql_table(tmp_path: Path, capsys):
    database = tmp_path / "erp.sqlite"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE bons (id INTEGER PRIMARY KEY, siret TEXT, code TEXT, poids_kg REAL, "
                   "date_maj TEXT)")
        db.execute("INSERT INTO bons VALUES (1, '85243162000123', '130205*', 12.5, '2026-11-02 10:00'), "
                   "(2, '44019372000255', '160107*', 3, '2026-11-03 11:00')")
    url = f"sqlite:///{database}"
    assert main(["init", "--sql", url, "--table", "bons", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "bsdd-bons.toml").read_text("utf-8")
    assert f'url = "{url}"\ntable = "bons"' in text
    assert 'key = ["id"]' in text
    assert 'cursor_column = "date_maj"' in text
    assert '"wasteDetails.code" = { column = "code", transforms = ["waste_code"] }' in text
    assert "wrote" in capsys.readouterr().out
    # Never over an existing file without --force.
    assert main(["init", "--sql", url, "--table", "bons", "--out", str(tmp_path)]) == 0
    assert "kept (exists; --force to overwrite)" in capsys.readouterr().out
    assert main(["init", "--sql", url, "--out", str(tmp_path)]) == 2
