"""Bad-input corpus: each malformed export gives exactly the problem an IT team can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.sources import CsvFolderSource, RowProblem, SourceRecord, open_source
from connector.sources.specs import CsvSourceSpec

HEADER = "id;producteur;dechet;poids\n"


def ingest(tmp_path: Path, data: bytes, name: str = "export.csv", **spec: object
           ) -> tuple[list[SourceRecord], list[RowProblem], Path]:
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    (inbox / name).write_bytes(data)
    source = open_source(CsvSourceSpec(type="csv", folder="inbox", key=["id"], stable_seconds=0,
                                       **spec),  # type: ignore[arg-type]
                         base_dir=tmp_path, mapping_name="m", state_dir=tmp_path / "state")
    assert isinstance(source, CsvFolderSource)
    records: list[SourceRecord] = []
    problems: list[RowProblem] = []
    for batch in source.read(None):
        records += batch.records
        problems += batch.problems
        source.acknowledge(batch)
    return records, problems, inbox


def only_problem(problems: list[RowProblem]) -> RowProblem:
    assert len(problems) == 1, problems
    return problems[0]


def test_clean_utf8_file_gives_one_record_per_row(tmp_path: Path) -> None:
    records, problems, inbox = ingest(tmp_path, (HEADER + "1;Dupont Frères;160104*;1,5\n"
                                                 "2;Müller;150110*;2\n").encode())
    assert problems == []
    assert [r.key for r in records] == ["1", "2"]
    assert records[0].values == {"id": "1", "producteur": "Dupont Frères", "dechet": "160104*",
                                 "poids": "1,5"}
    assert records[0].origin == "inbox/export.csv:line 2"
    assert records[0].unit == "export.csv"
    assert (inbox / "processed" / "export.csv").exists()
    assert not (inbox / "export.csv").exists()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param("\ufeffid;nom\n1;Éric 10 €\n".encode(), "Éric 10 €", id="utf8-bom"),
        pytest.param("id;nom\n1;Éric 10 €\n".encode("cp1252"), "Éric 10 €", id="cp1252-euro"),
        pytest.param("id;nom\n1;Hélène Œuvre\n".encode("cp1252"), "Hélène Œuvre", id="cp1252-oe"),
        pytest.param("id;nom\n1;Forêt\x81\n".encode("latin-1"), "Forêt\x81", id="latin1-fallback"),
        pytest.param("id;nom\r\n1;Éric 10 €\r\n".encode("utf-16"), "Éric 10 €", id="utf16-excel"),
    ],
)
def test_encodings_keep_accents_and_euro(tmp_path: Path, data: bytes, expected: str) -> None:
    records, problems, _ = ingest(tmp_path, data)
    assert problems == []
    assert list(records[0].values) == ["id", "nom"]
    assert records[0].values["nom"] == expected


def test_declared_encoding_for_dos_exports(tmp_path: Path) -> None:
    data = ("id;nom\n" + "".join(f"{i};Hélène à Besançon\n" for i in range(1, 4))).encode("cp850")
    records, problems, _ = ingest(tmp_path, data, encoding="cp850")
    assert problems == []
    assert [r.values["nom"] for r in records] == ["Hélène à Besançon"] * 3


def test_comma_delimiter_and_quoted_newline(tmp_path: Path) -> None:
    data = 'id,producteur,remarque\n1,"Dupont, SA","ligne 1\nligne 2"\n2,Durand,ok\n'
    records, problems, _ = ingest(tmp_path, data.encode())
    assert problems == []
    assert records[0].values["remarque"] == "ligne 1\nligne 2"
    assert records[0].values["producteur"] == "Dupont, SA"
    assert records[1].origin.endswith(":line 4")


def test_empty_file_is_rejected_with_explanation(tmp_path: Path) -> None:
    records, problems, inbox = ingest(tmp_path, b"")
    assert records == []
    assert only_problem(problems).reason == "the file is empty: no header line"
    assert only_problem(problems).origin == "inbox/export.csv"
    error = (inbox / "rejected" / "export.csv.error.txt").read_text(encoding="utf-8")
    assert "the file is empty: no header line" in error
    assert (inbox / "rejected" / "export.csv").exists()


def test_header_only_is_processed_without_records(tmp_path: Path) -> None:
    records, problems, inbox = ingest(tmp_path, HEADER.encode())
    assert (records, problems) == ([], [])
    assert (inbox / "processed" / "export.csv").exists()


def test_key_column_missing_from_header_rejects_file(tmp_path: Path) -> None:
    _, problems, _ = ingest(tmp_path, b"ref;nom\n1;x\n")
    assert only_problem(problems).reason == ("key column(s) 'id' missing from the header; "
                                            "columns found: ref, nom")


def test_binary_file_is_rejected(tmp_path: Path) -> None:
    _, problems, inbox = ingest(tmp_path, b"PK\x03\x04\x00\x00id;x\n")
    assert "NUL bytes" in only_problem(problems).reason
    assert (inbox / "rejected" / "export.csv.error.txt").exists()


ROW_CASES = [
    pytest.param(HEADER + "1;Dupont;160104*\n2;a;b;3\n", 2,
                 "missing columns: 3 of 4 fields (missing 'poids')", "poids", id="missing-column"),
    pytest.param(HEADER + "1;Dupont;160104*;2;oops;more\n2;a;b;3\n", 2,
                 "extra columns: 6 fields but the header has 4 (unexpected 'oops', 'more'); "
                 "an unquoted ';' inside a value?", None, id="extra-columns"),
    pytest.param(HEADER + "2;a;b;3\n1;Dupont;16", 3,
                 "truncated last line: 3 of 4 fields (missing 'poids'); was the file copied before "
                 "it was complete?", "poids", id="truncated-last-line"),
    pytest.param(HEADER + "1,Dupont,160104*,2\n2;a;b;3\n", 2,
                 "mixed delimiters: this row is separated by ',' but the file uses ';'", "producteur",
                 id="mixed-delimiters"),
    pytest.param(HEADER + ";Dupont;160104*;2\n2;a;b;3\n", 2, "key column 'id' is empty", "id",
                 id="empty-key"),
    pytest.param(HEADER + "NULL;Dupont;160104*;2\n2;a;b;3\n", 2, "key column 'id' is 'NULL'", "id",
                 id="null-key"),
    pytest.param(HEADER + "2;a;b;3\n2;Dupont;160104*;2\n", 3,
                 "duplicate key '2': already on line 2 of this file; only the first row is used", "id",
                 id="duplicate-key"),
    pytest.param(HEADER + "1;" + "x" * 10_001 + ";b;3\n2;a;b;3\n", 2,
                 "oversized field: 10001 characters, the limit is 10000", "producteur",
                 id="oversized-field"),
    pytest.param(HEADER + "1;" + "x" * 200_000 + ";b;3\n2;a;b;3\n", 2,
                 "oversized field: larger than 131072 characters", None, id="oversized-beyond-csv"),
    pytest.param(HEADER + '1;"Dupont"x;b;3\n2;a;b;3\n', 2,
                 "malformed CSV (';' expected after '\"'); quote values that contain ';' or '\"'", None,
                 id="bad-quote"),
]


@pytest.mark.parametrize(("text", "line", "reason", "column"), ROW_CASES)
def test_bad_row_is_reported_and_others_proceed(tmp_path: Path, text: str, line: int, reason: str,
                                                column: str | None) -> None:
    records, problems, inbox = ingest(tmp_path, text.encode())
    problem = only_problem(problems)
    assert (problem.origin, problem.reason, problem.column) == (f"inbox/export.csv:line {line}", reason,
                                                                column)
    assert problem.unit == "export.csv"
    assert [r.key for r in records] == ["2"]
    assert (inbox / "processed" / "export.csv").exists()


def test_unterminated_quote_runs_to_end_of_file(tmp_path: Path) -> None:
    records, problems, _ = ingest(tmp_path, (HEADER + '2;a;b;3\n1;"Dupont;b;3\n3;c;d;4\n').encode())
    problem = only_problem(problems)
    assert problem.origin == "inbox/export.csv:line 3"
    assert problem.reason.startswith("unterminated quoted field")
    assert [r.key for r in records] == ["2"]


def test_invalid_utf8_row_in_utf8_file(tmp_path: Path) -> None:
    data = (HEADER + "1;Hélène;160104*;2\n").encode() + b"2;Dupont\xff\xfe;b;3\n" + "3;Gérard;b;3\n".encode()
    records, problems, _ = ingest(tmp_path, data)
    problem = only_problem(problems)
    assert (problem.origin, problem.column) == ("inbox/export.csv:line 3", "producteur")
    assert problem.reason == "undecodable bytes (ff fe): not valid utf-8"
    assert [r.values["producteur"] for r in records] == ["Hélène", "Gérard"]


def test_trailing_empty_fields_are_not_extra_columns(tmp_path: Path) -> None:
    records, problems, _ = ingest(tmp_path, (HEADER + "1;a;b;3;;\n").encode())
    assert problems == []
    assert records[0].values == {"id": "1", "producteur": "a", "dechet": "b", "poids": "3"}


def test_composite_key_and_blank_lines(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "e.csv").write_text("\nsite;num;x\n\nA|B;1;x\n\n;;\nC;2;y\n", encoding="utf-8")
    source = CsvFolderSource(CsvSourceSpec(type="csv", folder=str(inbox), key=["site", "num"],
                                           stable_seconds=0), base_dir=tmp_path, mapping_name="m")
    records = [r for b in source.read(None) for r in b.records]
    assert [(r.key, r.origin) for r in records] == [("A\\|B|1", "inbox/e.csv:line 4"),
                                                    ("C|2", "inbox/e.csv:line 7")]


def test_problems_only_file_is_streamed_in_batches(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "e.csv").write_text(HEADER + ";x;y;z\n" * 25, encoding="utf-8")
    source = CsvFolderSource(CsvSourceSpec(type="csv", folder="inbox", key=["id"], stable_seconds=0,
                                           batch_size=10), base_dir=tmp_path, mapping_name="m")
    assert [len(b.problems) for b in source.read(None)] == [10, 10, 5]
