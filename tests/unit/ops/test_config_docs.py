"""config.example.toml loads to the defaults, and docs/configuration.md covers every setting."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from pydantic import BaseModel

from connector.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "config.example.toml"
DOC = ROOT / "docs" / "configuration.md"


def all_fields() -> list[tuple[str, str]]:
    out = []
    for section, field in Settings.model_fields.items():
        model = field.annotation
        assert isinstance(model, type)
        assert issubclass(model, BaseModel)
        out.extend((section, key) for key in model.model_fields)
    return out


def test_example_loads_and_equals_defaults() -> None:
    example = load_settings(EXAMPLE, {})
    defaults = load_settings(None, {})
    assert example.model_dump(exclude={"state", "mappings"}) == defaults.model_dump(
        exclude={"state", "mappings"})
    # Paths resolve against the example's folder (the repo root).
    assert example.state.dir == ROOT / "var"
    # The example loads the BSDD CSV example only: it runs on its sample data with the demo token.
    assert example.mappings.paths == [str(ROOT / "mappings" / "bsdd_csv.toml")]


def test_example_shows_every_setting() -> None:
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    text = EXAMPLE.read_text(encoding="utf-8")
    for section, key in all_fields():
        shown = key in data.get(section, {}) or re.search(rf"^# {key} = ", text, re.MULTILINE)
        assert shown, f"config.example.toml lacks [{section}] {key}"


def test_docs_cover_every_setting_with_its_env_name() -> None:
    doc = DOC.read_text(encoding="utf-8")
    for section, key in all_fields():
        env = f"TDC_{section.upper()}__{key.upper()}"
        row = re.search(rf"^\| `{key}` \| `{env}` \|.+\|$", doc, re.MULTILINE)
        assert row, f"docs/configuration.md has no row for {section}.{key} ({env})"
    for section in Settings.model_fields:
        assert f"## `[{section}]`" in doc
