"""What the engine's integration tests share: a runtime on a work folder, sample rows, the journal."""

from __future__ import annotations

from pathlib import Path

from connector.demo.run import _asset
from connector.domain.demo_companies import DEMO_TOKEN
from connector.runtime import Runtime, build_runtime
from connector.settings import load_settings
from td_emulator.testing import ServedEmulator


def runtime_for(
    tmp_path: Path,
    url: str,
    *,
    token: str = DEMO_TOKEN,
    extra: str = "",
    mapping_text: str | None = None,
    state: str = 'dir = "var"',
) -> Runtime:
    """A runtime as ``td-connector`` builds it from ``tmp_path/config.toml`` (written here)."""
    (tmp_path / "inbox").mkdir(exist_ok=True)
    mapping = mapping_text or _asset("bsdd_csv.toml").decode("utf-8")
    (tmp_path / "mapping.toml").write_text(mapping, "utf-8")
    (tmp_path / "config.toml").write_text(
        f'[trackdechets]\nurl = "{url}"\n[state]\n{state}\n[mappings]\npaths = ["mapping.toml"]\n{extra}',
        "utf-8",
    )
    settings = load_settings(tmp_path / "config.toml", env={"TDC_TRACKDECHETS__TOKEN": token})
    return build_runtime(settings, tmp_path)


def drop(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / "inbox" / name).write_text(text, "utf-8")


def csv_text(**replace: str) -> str:
    """The demo's sample export, with ``old=new`` replacements."""
    text = _asset("enlevements_mars.csv").decode("utf-8")
    for old, new in replace.items():
        text = text.replace(old, new)
    return text


def fields_sent(emulator: ServedEmulator) -> list[str]:
    return [f for e in emulator.emulator.journal for op in e["operations"] for f in op["fields"]]


def states(runtime: Runtime) -> dict[str, str]:
    return {r.record_key: r.state for r in runtime.store.records()}
