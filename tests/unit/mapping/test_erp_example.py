"""The collector-ERP example (``mappings/bsdd_erp_csv.toml``): conditions, rules and lookups at work
on its sample rows; and the lookup tables' own errors."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connector.errors import MappingError, RecordError, SourceError
from connector.mapping import load_mapping
from connector.mapping.lookups import table_from_rows
from connector.sources.base import SourceRecord
from connector.sources.lookups import load_lookups

from .conftest import REPO

MAPPINGS = REPO / "mappings"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def example(schema):
    mapping = load_mapping(MAPPINGS / "bsdd_erp_csv.toml", schema)
    tables = load_lookups(mapping.spec.lookups, base_dir=MAPPINGS)
    assert mapping.check_lookups(tables) == []
    return mapping.with_tables(tables)


def rows() -> list[SourceRecord]:
    with (MAPPINGS / "data" / "erp_bons.csv").open(encoding="utf-8", newline="") as handle:
        return [SourceRecord(key=row["id_bon"], values=row, origin=f"erp_bons.csv:line {i}")
                for i, row in enumerate(csv.DictReader(handle, delimiter=";"), start=2)]


def test_sample_rows_map_with_conditions_and_lookups(schema):
    mapping = example(schema)
    first, second, third = (mapping.apply(r, now=NOW) for r in rows())
    # Lookups: the client's details come from erp_clients.csv, the site from erp_sites.csv.
    assert first["emitter"]["company"] == {
        "siret": "85243162000123", "name": "Garage Dupont & Fils", "address": "12 rue des Lilas, 69003 Lyon",
        "contact": "Marie Dupont", "phone": "04 72 00 00 01", "mail": "marie.dupont@garage-dupont.example"}
    assert first["emitter"]["workSite"] == {"name": "Atelier Lilas", "address": "12 rue des Lilas",
                                            "postalCode": "69003", "city": "Lyon"}
    assert "workSite" not in second["emitter"]
    assert first["customId"] == "B000101"
    # Conditions: "precision" only for AUTRE, no transporter block without a SIRET, the ADR
    # mention only when the mapped isSubjectToADR is true.
    assert first["wasteDetails"]["packagingInfos"] == [{"type": "FUT", "quantity": 4}]
    assert second["wasteDetails"]["packagingInfos"] == [
        {"type": "AUTRE", "quantity": 1, "other": "Caisse-palette étanche"}]
    assert "transporter" not in second
    assert first["transporter"]["company"]["siret"] == "51830934000140"
    assert third["transporter"]["customInfo"] == "Quai 3"
    assert "onuCode" not in third["wasteDetails"]


def test_sample_rule_rejections_name_the_row_the_rule_and_the_columns(schema):
    mapping = example(schema)
    record = rows()[1]
    bad = SourceRecord(key=record.key, origin=record.origin, values={
        **record.values, "date_enlevement": "31/02/2026", "mention_adr": "", "precision": ""})
    with pytest.raises(RecordError) as caught:
        mapping.apply(bad, now=NOW)
    assert caught.value.problems == [  # type: ignore[attr-defined]
        'erp_bons.csv:line 3: rule "pickup date" (column "date_enlevement"): date d\'enlèvement invalide '
        '("31/02/2026" is not a date (expected dd/mm/yyyy HH:MM:SS or dd/mm/yyyy HH:MM or dd/mm/yyyy or '
        "dd-mm-yyyy or dd.mm.yyyy or yyyy-mm-dd or ISO 8601))",
        'erp_bons.csv:line 3: rule "precision for AUTRE" (column "precision"; also read "conditionnement"): '
        "précision obligatoire pour un conditionnement AUTRE (is empty)",
        'erp_bons.csv:line 3: rule "ADR mention" (column "mention_adr"; also read "soumis_adr"): mention ADR '
        "obligatoire pour un déchet soumis à l'ADR (is empty)",
    ]


def test_unknown_client_rejects_the_row_or_leaves_the_field_empty(schema, tmp_path: Path):
    mapping = example(schema)
    record = rows()[0]
    unknown = SourceRecord(key="x", origin="o", values={**record.values, "code_client": "C999"})
    with pytest.raises(RecordError, match=r'"C999" is not in lookup "clients" \(erp_clients.csv\)'):
        mapping.apply(unknown, now=NOW)
    # Keys compare stripped and case-insensitively.
    spaced = SourceRecord(key="x", origin="o", values={**record.values, "code_client": " c001 "})
    assert mapping.apply(spaced, now=NOW)["emitter"]["company"]["name"] == "Garage Dupont & Fils"


def test_lookup_problems_at_load(schema, tmp_path: Path):
    (tmp_path / "clients.csv").write_text("code_client;nom\nC1;A\nc1 ;B\n", "utf-8")
    text = (MAPPINGS / "bsdd_erp_csv.toml").read_text("utf-8")
    (tmp_path / "m.toml").write_text(text.replace('file = "data/erp_clients.csv"', 'file = "clients.csv"')
                                     .replace('file = "data/erp_sites.csv"', 'file = "nowhere.csv"'), "utf-8")
    mapping = load_mapping(tmp_path / "m.toml", schema)
    with pytest.raises(SourceError) as caught:
        load_lookups(mapping.spec.lookups, base_dir=tmp_path)
    assert str(caught.value) == (
        'lookup "clients": key "c1" appears twice in clients.csv (row 2 and an earlier one); '
        f'lookup "sites": file {tmp_path / "nowhere.csv"} does not exist')
    (tmp_path / "clients.csv").write_text("code_client;nom;mel\nC1;A;a@b\n", "utf-8")
    (tmp_path / "nowhere.csv").write_text("code_site;nom;adresse;code_postal;ville\n", "utf-8")
    tables = load_lookups(mapping.spec.lookups, base_dir=tmp_path)
    problems = mapping.check_lookups(tables)
    assert problems[0] == (f'{tmp_path / "m.toml"}: fields."emitter.company.siret": lookup "clients" '
                           '(clients.csv): unknown column "siret" (columns: code_client, nom, mel)')
    assert f'{tmp_path / "m.toml"}: fields."emitter.company.mail": lookup "clients" (clients.csv): ' \
           'unknown column "mail" (columns: code_client, nom, mel)' in problems


@pytest.mark.parametrize(("lookups", "field", "expected"), [
    ('[lookups.c]\nkey = "code"\n', '{ lookup = "c", by = "x", column = "y" }',
     'lookups."c": give "file" (a CSV file) or "url" and "query" (SQL)'),
    ('[lookups.c]\nkey = "code"\nfile = "a.csv"\nurl = "sqlite://"\n',
     '{ lookup = "c", by = "x", column = "y" }',
     'lookups."c": "file" and "url"/"query" exclude each other'),
    ('[lookups.c]\nkey = "code"\nfile = "a.csv"\n', '{ lookup = "d", by = "x", column = "y" }',
     'fields."wasteDetails.name": unknown lookup "d" (lookups: c)'),
])
def test_bad_lookups_refused_at_load(schema, tmp_path, lookups, field, expected):
    (tmp_path / "m.toml").write_text(
        'version = 1\nname = "t"\nkind = "BSDD"\n[source]\ntype = "csv"\nfolder = "in"\nkey = ["k"]\n'
        + lookups + f'[fields]\n"wasteDetails.name" = {field}\n', "utf-8")
    with pytest.raises(MappingError) as caught:
        load_mapping(tmp_path / "m.toml", schema)
    assert [p.split(": ", 1)[1] for p in caught.value.problems] == [expected]


def test_fingerprint_follows_content_not_order():
    a = table_from_rows("t", "k", [{"k": "1", "v": "a"}, {"k": "2", "v": "b"}], ["k", "v"], "x")
    b = table_from_rows("t", "k", [{"k": "2", "v": "b"}, {"k": "1", "v": "a"}], ["k", "v"], "x")
    c = table_from_rows("t", "k", [{"k": "2", "v": "b"}, {"k": "1", "v": "A"}], ["k", "v"], "x")
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_json_schema_for_editors_covers_the_new_syntax():
    import json

    schema = json.loads((REPO / "connector" / "mapping" / "mapping.schema.json").read_text("utf-8"))
    assert {"rules", "lookups", "blocks"} <= set(schema["properties"])
    defs = schema["$defs"]
    assert {"ConditionSpec", "RuleSpec", "LookupSpec", "LookupValue", "BlockSpec"} <= set(defs)
    assert {"in", "equals", "not_equals", "empty", "matches", "column", "field"} == set(
        defs["ConditionSpec"]["properties"])
    for value in ("ColumnValue", "ConstValue", "TemplateValue", "LookupValue", "ChildrenValue", "ItemsValue"):
        assert {"when", "unless"} <= set(defs[value]["properties"]), value


def test_lookup_missing_empty_and_lookups_in_child_rows(schema, tmp_path: Path):
    (tmp_path / "types.csv").write_text("code;type_td\nF;FUT\nG;GRV\n", "utf-8")
    (tmp_path / "m.toml").write_text(
        'version = 1\nname = "t"\nkind = "BSDD"\n[source]\ntype = "csv"\nfolder = "in"\nkey = ["k"]\n'
        '[lifecycle]\nseal = false\n[lookups.types]\nfile = "types.csv"\nkey = "code"\n[fields]\n'
        '"wasteDetails.name" = { lookup = "types", by = "code", column = "type_td", missing = "empty" }\n'
        '"wasteDetails.packagingInfos" = { children = "cond", fields = { type = { lookup = "types", '
        'by = "code", column = "type_td" }, quantity = "n" } }\n', "utf-8")
    mapping = load_mapping(tmp_path / "m.toml", schema)
    mapping = mapping.with_tables(load_lookups(mapping.spec.lookups, base_dir=tmp_path))
    record = SourceRecord(key="K", origin="o", values={"code": "Z"},
                          children={"cond": [{"code": "f", "n": 2}, {"code": "G", "n": 1}]})
    payload = mapping.apply(record, now=NOW)
    assert payload["wasteDetails"] == {"packagingInfos": [{"type": "FUT", "quantity": 2},
                                                          {"type": "GRV", "quantity": 1}]}
    bad = SourceRecord(key="K", origin="o", values={}, children={"cond": [{"code": "X", "n": 2}]})
    expected = (r'\[cond #1\] \(lookup "types" by column "code", column "type_td"\): '
                r'"X" is not in lookup "types" \(types.csv\)')
    with pytest.raises(RecordError, match=expected):
        mapping.apply(bad, now=NOW)
