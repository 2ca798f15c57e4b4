"""One version number: pyproject.toml's, which the package and ``td-connector --version`` report."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import connector
from tests.reference import ROOT


def _pyproject_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return str(tomllib.load(handle)["project"]["version"])


def test_the_package_reports_the_pyproject_version() -> None:
    # A mismatch means the installed metadata is stale: reinstall (pip install -e .).
    assert connector.__version__ == _pyproject_version()


def test_the_command_prints_it() -> None:
    done = subprocess.run([sys.executable, "-m", "connector", "--version"], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == f"td-connector {_pyproject_version()}"


def test_no_second_version_literal_in_the_package() -> None:
    version = _pyproject_version()
    written = [path.relative_to(ROOT) for path in (ROOT / "connector").rglob("*.py")
               if f'"{version}"' in path.read_text("utf-8")]
    assert written == []
