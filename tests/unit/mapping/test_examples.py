"""Every example mapping compiles, and every document it produces for the sample rows validates
against the OFFICIAL schema (../shared), so the examples can never teach a broken mapping."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest

from connector.domain.kinds import KindName
from connector.mapping import load_mapping, load_mappings
from connector.sources.base import SourceRecord
from connector.trackdechets.documents import create_document, seal_document, update_document
from connector.trackdechets.schema import validate_operation

from .conftest import REPO

MAPPINGS = REPO / "mappings"
CSV_EXAMPLES = {
    "bsdd_csv.toml": "bsdd_enlevements.csv",
    "bsda_csv.toml": "bsda_chantiers.csv",
    "bsdasri_csv.toml": "bsdasri_collectes.csv",
    "bsff_csv.toml": "bsff_interventions.csv",
    "bsvhu_csv.toml": "bsvhu_vehicules.csv",
    "bspaoh_csv.toml": "bspaoh_collectes.csv",
}


def csv_records(name: str, key: str) -> list[SourceRecord]:
    with (MAPPINGS / "data" / name).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    return [SourceRecord(key=row[key], values=row, origin=f"{name}:line {i}", unit=name)
            for i, row in enumerate(rows, start=2)]


def sqlite_records() -> list[SourceRecord]:
    db = sqlite3.connect(":memory:")
    db.row_factory = sqlite3.Row
    db.executescript((MAPPINGS / "data" / "erp.sql").read_text("utf-8"))
    records = []
    for row in db.execute("SELECT * FROM enlevements ORDER BY id"):
        children = [dict(c) for c in db.execute(
            "SELECT type, nombre, precision_autre FROM conditionnements WHERE bon_id = ? ORDER BY id",
            (row["id"],))]
        origin = f"table enlevements, id={row['id']}"
        records.append(SourceRecord(key=row["n_bon"], values=dict(row), origin=origin,
                                    children={"conditionnements": children}))
    db.close()
    return records


def assert_documents_valid(mapping, records, schema) -> None:
    assert records, "the sample must hold rows"
    kind = mapping.kind
    for record in records:
        payload = mapping.apply(record)
        create = create_document(kind)
        assert validate_operation(schema, create.query, {"input": payload}) == [], record.origin
        update = update_document(kind)
        variables = ({"input": {**payload, "id": "x"}} if kind.name is KindName.BSDD
                     else {"id": "x", "input": payload})
        assert validate_operation(schema, update.query, variables) == [], record.origin
        assert validate_operation(schema, seal_document(kind).query, {"id": "x"}) == []


@pytest.mark.parametrize(("mapping_file", "data_file"), sorted(CSV_EXAMPLES.items()))
def test_csv_example_documents_validate_against_the_official_schema(mapping_file, data_file, schema):
    mapping = load_mapping(MAPPINGS / mapping_file, schema)
    records = csv_records(data_file, mapping.key_columns[0])
    assert mapping.check_columns(list(records[0].values)) == []
    assert_documents_valid(mapping, records, schema)


def test_sqlite_example_documents_validate_and_use_child_rows(schema):
    mapping = load_mapping(MAPPINGS / "bsdd_sqlite.toml", schema)
    records = sqlite_records()
    assert mapping.check_columns(list(records[0].values)) == []
    assert_documents_valid(mapping, records, schema)
    packagings = mapping.apply(records[2])["wasteDetails"]["packagingInfos"]
    assert packagings == [{"type": "FUT", "quantity": 2},
                          {"type": "AUTRE", "quantity": 1, "other": "Seaux métalliques fermés"}]


def test_there_is_one_example_per_kind(schema):
    mappings = load_mappings(["*.toml"], schema, base_dir=MAPPINGS)
    assert {m.kind.name for m in mappings} == set(KindName)
    assert len({m.name for m in mappings}) == len(mappings)


def test_load_mappings_collects_problems_of_every_file(tmp_path: Path, schema):
    for name in ("a", "b"):
        (tmp_path / f"{name}.toml").write_text(
            f'version = 1\nname = "{name}"\nkind = "BSDD"\n[source]\ntype = "csv"\nfolder = "in"\n'
            'key = ["k"]\n[fields]\n"wasteDetails.quantit" = "q"\n', "utf-8")
    with pytest.raises(Exception) as caught:
        load_mappings(["*.toml", "missing/*.toml"], schema, base_dir=tmp_path)
    from connector.errors import MappingError

    assert isinstance(caught.value, MappingError)
    assert [p.split(": ", 1)[1] for p in caught.value.problems] == [
        "no mapping file matches",
        'fields."wasteDetails.quantit": unknown field \'wasteDetails.quantit\' in CreateFormInput '
        '(did you mean "wasteDetails.quantity"?)',
        'fields."wasteDetails.quantit": unknown field \'wasteDetails.quantit\' in CreateFormInput '
        '(did you mean "wasteDetails.quantity"?)',
    ]
