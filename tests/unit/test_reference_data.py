"""The project's copies of the platform's facts match the reference, and carry no prose.

The comparisons run when ``../shared/trackdechets`` exists and are skipped with the reason when it
does not (a fresh clone); the checks on the committed files themselves always run.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from graphql import build_schema

from tests.reference import ROOT, shared_trackdechets


def _script() -> ModuleType:
    path = ROOT / "scripts" / "refresh_reference_data.py"
    spec = importlib.util.spec_from_file_location("refresh_reference_data", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


SCRIPT = _script()
GENERATED = [SCRIPT.API_SCHEMA, SCRIPT.WASTE_CODES, SCRIPT.OPERATION_CODES,
             SCRIPT.EMULATOR_WASTE_CODES, SCRIPT.EMULATOR_OPERATION_CODES]


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The script's output from ``../shared`` into a temporary tree (once for the module)."""
    shared = shared_trackdechets()
    out = tmp_path_factory.mktemp("regenerated")
    SCRIPT.write(shared, out, log=lambda _line: None)
    return out


@pytest.mark.parametrize("relative", GENERATED, ids=str)
def test_committed_copy_is_what_the_script_generates(relative: Path, regenerated: Path) -> None:
    committed = (ROOT / relative).read_text("utf-8")
    assert committed == (regenerated / relative).read_text("utf-8"), (
        f"{relative} differs from the reference: run python scripts/refresh_reference_data.py"
    )


def test_the_api_schema_is_structure_only() -> None:
    text = (ROOT / SCRIPT.API_SCHEMA).read_text("utf-8")
    assert '"' not in text, "a description or a deprecation reason slipped into the SDL"
    ours = build_schema(text)
    assert len(ours.type_map) > 500
    assert "createForm" in ours.mutation_type.fields  # type: ignore[union-attr]


def test_the_nomenclature_files_hold_facts_only() -> None:
    wastes = json.loads((ROOT / SCRIPT.WASTE_CODES).read_text("utf-8"))
    assert wastes["count"] == len(wastes["codes"]) > 800
    assert all(set(item) == {"code", "dangerous", "accepted_on"} for item in wastes["codes"])
    assert all(item["dangerous"] == item["code"].endswith("*") for item in wastes["codes"])
    operations = json.loads((ROOT / SCRIPT.OPERATION_CODES).read_text("utf-8"))
    assert set(operations["kinds"]) == set(SCRIPT.KINDS)
    assert "description" not in json.dumps(operations) + json.dumps(wastes)


def test_the_script_refuses_a_missing_reference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert SCRIPT.main(["--shared", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 2
    assert "reference material not found" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_the_emulator_carries_the_same_facts() -> None:
    """Its own copy (it must not read the connector's), written by the same script."""
    for ours, its in ((SCRIPT.WASTE_CODES, SCRIPT.EMULATOR_WASTE_CODES),
                      (SCRIPT.OPERATION_CODES, SCRIPT.EMULATOR_OPERATION_CODES)):
        assert (ROOT / ours).read_bytes() == (ROOT / its).read_bytes(), its
