"""Applying a compiled mapping: exact record errors, golden payloads, the JSON Schema export."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from connector.errors import RecordError
from connector.mapping import load_mapping, mapping_json_schema, payload_hash
from connector.sources.base import SourceRecord
from connector.trackdechets.documents import create_document

from .conftest import REPO
from .test_examples import csv_records

GOLDEN = Path(__file__).parent / "golden"


def test_json_schema_export_does_not_drift():
    committed = (REPO / "connector" / "mapping" / "mapping.schema.json").read_text("utf-8")
    assert committed == mapping_json_schema(), "run: python -c 'from connector.mapping import " \
        "mapping_json_schema as s; print(s(), end=\"\")' > connector/mapping/mapping.schema.json"


def test_bad_row_gets_one_error_listing_every_problem(schema):
    mapping = load_mapping(REPO / "mappings" / "bsdd_csv.toml", schema)
    record = csv_records("bsdd_enlevements.csv", "n_bon")[0]
    bad = SourceRecord(key=record.key, origin="export.csv:line 12",
                       values={**record.values, "poids_kg": "12,x", "code_traitement": "D6"})
    with pytest.raises(RecordError) as caught:
        mapping.apply(bad)
    assert caught.value.problems == [
        'export.csv:line 12: field "recipient.processingOperation" (column "code_traitement"): '
        '"D6" is not a known treatment operation code',
        'export.csv:line 12: field "wasteDetails.quantity" (column "poids_kg"): "12,x" is not a number',
    ]
    assert caught.value.field == "recipient.processingOperation"
    assert caught.value.column == "code_traitement"


def test_domain_checks_run_after_mapping(schema):
    mapping = load_mapping(REPO / "mappings" / "bsdd_csv.toml", schema)
    record = csv_records("bsdd_enlevements.csv", "n_bon")[0]
    values = {**record.values, "poids_kg": "45 000", "cap": "", "soumis_adr": "non", "nb_colis": "0"}
    with pytest.raises(RecordError) as caught:
        mapping.apply(SourceRecord(key="k", origin="x.csv:line 3", values=values))
    assert caught.value.problems == [
        'x.csv:line 3: field "wasteDetails.quantity" (column "poids_kg"): 45 t is over the limit of 40 t '
        "by road (is the unit right? kg_to_t / t_to_kg)",
        'x.csv:line 3: field "recipient.cap" (column "cap"): is required to seal a BSDD (markAsSealed)',
        'x.csv:line 3: field "wasteDetails.onuCode" (column "mention_adr"): must be empty when '
        "isSubjectToADR is false",
        'x.csv:line 3: field "wasteDetails.packagingInfos[0].quantity" (column "nb_colis"): needs a whole '
        "number of packagings, at least 1",
    ]


def test_required_column_and_default(schema, tmp_path):
    text = ('version = 1\nname = "t"\nkind = "BSVHU"\n[source]\ntype = "csv"\nfolder = "in"\nkey = ["k"]\n'
            '[lifecycle]\nseal = false\n[fields]\n'
            '"wasteCode" = { column = "code", required = true }\n'
            '"weight.isEstimate" = { column = "estime", default = false }\n'
            '"emitter.company.name" = { template = "{nom} ({ville})" }\n')
    path = tmp_path / "t.toml"
    path.write_text(text, "utf-8")
    mapping = load_mapping(path, schema)
    ok = mapping.apply(SourceRecord(key="K1", origin="o", values={"code": "16 01 06", "estime": "",
                                                                   "nom": "Casse", "ville": ""}))
    assert ok == {"wasteCode": "16 01 06", "weight": {"isEstimate": False},
                  "emitter": {"company": {"name": "Casse ()"}}, "customId": "K1"}
    with pytest.raises(RecordError, match=r'^o: field "wasteCode" \(column "code"\): is required but '
                                          r"the column is empty$"):
        mapping.apply(SourceRecord(key="K2", origin="o", values={"code": " "}))


@pytest.mark.parametrize("name", ["bsdd_csv", "bsvhu_csv", "bsff_csv"])
def test_golden_rendered_create_documents(name, schema):
    """Set UPDATE_GOLDEN=1 to rewrite the files after a deliberate change; review the diff."""
    mapping = load_mapping(REPO / "mappings" / f"{name}.toml", schema)
    data = {"bsdd_csv": "bsdd_enlevements.csv", "bsvhu_csv": "bsvhu_vehicules.csv",
            "bsff_csv": "bsff_interventions.csv"}[name]
    document = create_document(mapping.kind)
    rendered = []
    for record in csv_records(data, mapping.key_columns[0]):
        payload = mapping.apply(record)
        rendered.append({"operationName": document.operation_name, "query": document.query,
                         "variables": {"input": payload}, "payload_hash": payload_hash(payload)})
    text = json.dumps(rendered, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    golden = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text, "utf-8")
    assert text == golden.read_text("utf-8")


def test_payload_hash_ignores_key_order():
    assert payload_hash({"a": 1, "b": [1, "é"]}) == payload_hash({"b": [1, "é"], "a": 1})
    assert payload_hash({"a": 1}) != payload_hash({"a": 1.5})
