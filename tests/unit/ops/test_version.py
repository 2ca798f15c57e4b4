"""One version number (pyproject.toml's, reported by the package and ``td-connector --version``), and
dependencies bounded and pinned (``constraints.txt``)."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import connector
from connector.cli import main
from tests.reference import ROOT


def _pyproject_version() -> str:
    return str(_pyproject()["project"]["version"])


def test_the_package_reports_the_pyproject_version() -> None:
    # A mismatch means the installed metadata is stale: reinstall (pip install -e .).
    assert connector.__version__ == _pyproject_version()


def test_the_command_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"td-connector {_pyproject_version()}"


def test_no_second_version_literal_in_the_package() -> None:
    version = _pyproject_version()
    written = [path.relative_to(ROOT) for path in (ROOT / "connector").rglob("*.py")
               if f'"{version}"' in path.read_text("utf-8")]
    assert written == []


def _pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


def _runtime_requirements() -> list[Requirement]:
    project = _pyproject()["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in [*project["dependencies"], *extras["postgres"], *extras["mysql"]]]


def test_every_dependency_has_an_upper_bound() -> None:
    project = _pyproject()["project"]
    every = [Requirement(r) for group in [project["dependencies"], *project["optional-dependencies"].values()]
             for r in group]
    own = canonicalize_name(project["name"])  # an extra of this project (test -> emulator) is bounded there
    unbounded = [str(r) for r in every if canonicalize_name(r.name) != own
                 and not any(s.operator in ("<", "<=", "==", "~=") for s in r.specifier)]
    assert unbounded == []


def test_constraints_pin_every_runtime_dependency_within_its_bounds() -> None:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, pinned = line.partition("==")
            pins[canonicalize_name(name)] = pinned.strip()
    problems = []
    for requirement in _runtime_requirements():
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None:
            problems.append(f"{requirement.name}: not pinned (run scripts/refresh_constraints.sh)")
        elif not requirement.specifier.contains(pinned, prereleases=True):
            problems.append(f"{requirement.name}=={pinned} is outside {requirement.specifier}")
    assert problems == []
