"""``when`` / ``unless`` on fields, lists and blocks: what is left out, and the load-time errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.errors import MappingError
from connector.mapping import load_mapping
from connector.mapping.conditions import normalize
from connector.sources.base import SourceRecord

HEAD = ('version = 1\nname = "t"\nkind = "BSDD"\n[source]\ntype = "csv"\nfolder = "in"\nkey = ["k"]\n'
        "[lifecycle]\nseal = false\n")


def load(tmp_path: Path, schema, body: str):
    path = tmp_path / "m.toml"
    path.write_text(HEAD + body, "utf-8")
    return load_mapping(path, schema)


def rec(**values: str) -> SourceRecord:
    return SourceRecord(key="K", origin="o", values=values)


def test_other_is_sent_only_for_autre_packagings(schema, tmp_path):
    mapping = load(tmp_path, schema, '[fields]\n"wasteDetails.packagingInfos" = { items = [\n'
                   '  { type = "cond", quantity = "nb", other = { column = "precision", '
                   'when = { column = "cond", equals = "autre" } } },\n] }\n')
    fut = mapping.apply(rec(cond="FUT", nb="2", precision="fût métal 200 l"))
    assert fut["wasteDetails"]["packagingInfos"] == [{"type": "FUT", "quantity": 2}]
    other = mapping.apply(rec(cond="AUTRE", nb="1", precision="caisse-palette"))
    assert other["wasteDetails"]["packagingInfos"] == [
        {"type": "AUTRE", "quantity": 1, "other": "caisse-palette"}]


def test_block_left_out_when_its_condition_is_false(schema, tmp_path):
    mapping = load(tmp_path, schema, (
        '[fields]\n"transporter.company.siret" = "siret_t"\n"transporter.customInfo" = "commentaire"\n'
        '"transporter.mode" = { const = "ROAD" }\n"wasteDetails.name" = "designation"\n'
        '[blocks."transporter"]\nwhen = { column = "siret_t", empty = false }\n'))
    without = mapping.apply(rec(siret_t=" ", commentaire="appeler avant", designation="Huiles"))
    assert without == {"wasteDetails": {"name": "Huiles"}, "customId": "K"}
    with_t = mapping.apply(rec(siret_t="51830934000140", commentaire="appeler", designation="Huiles"))
    assert with_t["transporter"] == {"company": {"siret": "51830934000140"}, "customInfo": "appeler",
                                     "mode": "ROAD"}


def test_condition_on_another_mapped_field_reads_its_final_value(schema, tmp_path):
    # The field read is declared AFTER the one that reads it: the order of the file does not matter.
    mapping = load(tmp_path, schema, (
        '[fields]\n"wasteDetails.onuCode" = { column = "mention", when = { field = '
        '"wasteDetails.isSubjectToADR", equals = true } }\n'
        '"wasteDetails.isSubjectToADR" = { column = "adr", transforms = ["bool"] }\n'))
    assert mapping.apply(rec(adr="oui", mention="UN 1202"))["wasteDetails"] == {
        "isSubjectToADR": True, "onuCode": "UN 1202"}
    assert mapping.apply(rec(adr="non", mention="UN 1202"))["wasteDetails"] == {"isSubjectToADR": False}


def test_unless_list_and_in_and_matches(schema, tmp_path):
    mapping = load(tmp_path, schema, (
        '[fields]\n"wasteDetails.name" = { column = "designation", unless = [{ column = "statut", '
        'in = ["annulé", "test"] }, { column = "ref", matches = "TMP-.*" }] }\n'))
    kept = mapping.apply(rec(designation="Huiles", statut="OK", ref="A-1"))
    assert kept["wasteDetails"] == {"name": "Huiles"}
    assert "wasteDetails" not in mapping.apply(rec(designation="Huiles", statut=" Annulé ", ref="A-1"))
    assert "wasteDetails" not in mapping.apply(rec(designation="Huiles", statut="", ref="TMP-9"))


def test_conditions_in_child_rows_read_the_child_row(schema, tmp_path):
    mapping = load(tmp_path, schema, (
        '[fields]\n"wasteDetails.packagingInfos" = { children = "cond", fields = { type = "type", '
        'quantity = "n", other = { column = "precision", when = { column = "type", equals = "AUTRE" } } '
        "} }\n"))
    record = SourceRecord(key="K", origin="o", values={}, children={"cond": [
        {"type": "FUT", "n": 1, "precision": "métal"}, {"type": "AUTRE", "n": 2, "precision": "sac"}]})
    assert mapping.apply(record)["wasteDetails"]["packagingInfos"] == [
        {"type": "FUT", "quantity": 1}, {"type": "AUTRE", "quantity": 2, "other": "sac"}]


def test_whole_list_condition(schema, tmp_path):
    mapping = load(tmp_path, schema, (
        '[fields]\n"wasteDetails.packagingInfos" = { items = [{ type = "cond", quantity = "nb" }], '
        'unless = { column = "vrac", equals = "oui" } }\n"wasteDetails.name" = "d"\n'))
    assert "packagingInfos" not in mapping.apply(rec(cond="FUT", nb="1", vrac="oui", d="x"))["wasteDetails"]
    assert mapping.apply(rec(cond="FUT", nb="1", vrac="", d="x"))["wasteDetails"]["packagingInfos"]


def test_condition_columns_are_checked_against_the_source(schema, tmp_path):
    mapping = load(tmp_path, schema, (
        '[fields]\n"wasteDetails.name" = { column = "designation", when = { column = "statutt" } }\n'))
    assert "statutt" in mapping.required_columns()
    assert mapping.check_columns(["k", "designation", "statut"]) == [
        f'{tmp_path / "m.toml"}: fields."wasteDetails.name": unknown column "statutt" '
        '(did you mean "statut"?)']


@pytest.mark.parametrize(("body", "expected"), [
    ('"wasteDetails.name" = { column = "d", when = { column = "a", field = "customId" } }',
     'fields."wasteDetails.name": when: a condition names exactly one of \'column\' or \'field\''),
    ('"wasteDetails.name" = { column = "d", when = { column = "a", equals = "x", empty = true } }',
     'fields."wasteDetails.name": when: a condition has one test, found equals, empty'),
    ('"wasteDetails.name" = { column = "d", unless = [{ column = "a", matches = "(" }] }',
     'fields."wasteDetails.name": unless[0]: pattern \'(\' is not a valid regular expression: missing ), '
     'unterminated subpattern at position 0'),
    ('"wasteDetails.name" = { column = "d", when = { field = "wasteDetails.nme" } }',
     'fields."wasteDetails.name": condition on field \'wasteDetails.nme\', which the mapping does not set '
     'at the top level (did you mean "wasteDetails.name"?)'),
    ('"wasteDetails.name" = { column = "d", when = { field = "wasteDetails.code" } }\n'
     '"wasteDetails.code" = { column = "c", when = { field = "customId" } }\n"customId" = "k"',
     'fields."wasteDetails.name": field \'wasteDetails.code\' has a condition on another field itself; '
     "test that field's column instead"),
    ('"wasteDetails.name" = { column = "d", when = { colum = "a" } }',
     'fields."wasteDetails.name".when.colum: unknown key \'colum\''),
    ('"wasteDetails.name" = "d"\n[blocks."transporter"]\nwhen = { column = "s" }',
     'blocks."transporter": no mapped field under \'transporter\' (top-level blocks mapped: wasteDetails)'),
])
def test_bad_conditions_are_refused_at_load(schema, tmp_path, body, expected):
    with pytest.raises(MappingError) as caught:
        load(tmp_path, schema, "[fields]\n" + body + "\n")
    assert [p.split(": ", 1)[1] for p in caught.value.problems] == [expected]


def test_normalize_compares_like_a_person_would():
    assert normalize(" Autre ") == normalize("AUTRE")
    assert normalize("12,0") == normalize(12) == "12"
    assert normalize(True) == normalize("true")
    assert normalize(None) == normalize("  ") == ""
    assert normalize("UN 1202") == "un 1202"
