"""The end-to-end tests run what ships: the built wheel, installed in a venv of its own.

``build_and_install`` copies the files the package is built from (not the working tree's leftovers),
builds the wheel once, creates an empty venv and installs the wheel there with ``--no-deps``. The
third-party dependencies are the test interpreter's own, reached through a ``.pth`` line appended
*after* the new venv's site-packages: resolving and downloading them again for every session would
cost a registry round trip and half a minute, and they are the same versions the rest of the suite
runs against. The package under test (``connector``, ``td_emulator``, their data files and console
scripts) comes from the wheel only — the source tree's editable hook is a ``.pth`` of the test
venv, which a ``.pth`` line does not execute — and ``test_wheel.py`` checks it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["InstalledWheel", "build_and_install", "clean_env"]

ROOT = Path(__file__).resolve().parents[2]
# What setuptools reads to build the distribution (pyproject's readme and package list).
_BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "connector", "td_emulator")


@dataclass(frozen=True)
class InstalledWheel:
    wheel: Path
    venv: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    @property
    def td_connector(self) -> Path:
        return self.bin / "td-connector"

    def metadata(self) -> str:
        with zipfile.ZipFile(self.wheel) as archive:
            name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            return archive.read(name).decode("utf-8")

    def files(self) -> list[str]:
        with zipfile.ZipFile(self.wheel) as archive:
            return archive.namelist()


def clean_env() -> dict[str, str]:
    """The environment without PYTHONPATH: nothing but the venv decides what gets imported."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # Run from the temporary folder: `python -m pip` puts its working directory on sys.path, and the
    # repository root holds the editable install's egg-info, which pip would take as installed.
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, cwd=cwd,
                          env=clean_env())


def _build(source: Path, out: Path) -> Path:
    cwd = out.parent
    base = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(out)]
    # The test extra brings setuptools and wheel, so no isolated build env has to be resolved;
    # an isolated build (pip fetches the backend) is the fallback for a venv without them.
    done = _run([*base, "--no-build-isolation"], cwd)
    if done.returncode != 0:
        done = _run(base, cwd)
    if done.returncode != 0:
        raise RuntimeError(f"building the wheel failed:\n{done.stdout}\n{done.stderr}")
    return next(out.glob("trackdechets_connector-*.whl"))


def build_and_install(tmp: Path) -> InstalledWheel:
    source = tmp / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in _BUILD_INPUTS:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    wheel = _build(source, tmp / "dist")
    target = tmp / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(target)
    installed = InstalledWheel(wheel, target)
    done = _run([sys.executable, "-m", "pip", "--python", str(installed.python), "install", "-q",
                 "--no-deps", "--no-index", str(wheel)], tmp)
    if done.returncode != 0:
        raise RuntimeError(f"installing the wheel failed:\n{done.stdout}\n{done.stderr}")
    site = _run([str(installed.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                tmp)
    dependencies = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    (Path(site.stdout.strip()) / "zz_test_dependencies.pth").write_text("\n".join(dependencies) + "\n")
    return installed
