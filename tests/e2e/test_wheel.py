"""What the end-to-end tests run is the wheel, and the wheel is what a user installs."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import httpx

from connector.domain.demo_companies import DEMO_TOKEN

from .process import process_env, wait_for
from .wheel import ROOT, InstalledWheel


def _python(installed: InstalledWheel, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(installed.python), "-c", code], capture_output=True, text=True, cwd=cwd,
                          env=process_env(None), timeout=60, check=False)


def test_the_packages_come_from_the_installed_wheel_not_the_source_tree(
    installed_wheel: InstalledWheel, tmp_path: Path
) -> None:
    done = _python(installed_wheel, "import connector, td_emulator; print(connector.__file__); "
                   "print(td_emulator.__file__)", tmp_path)
    assert done.returncode == 0, done.stderr
    for line in done.stdout.split():
        assert Path(line).is_relative_to(installed_wheel.venv), line
        assert not Path(line).is_relative_to(ROOT), line
    assert installed_wheel.td_connector.exists()
    assert (installed_wheel.bin / "td-emulator").exists()


def test_the_emulator_stack_is_an_extra_not_a_dependency(installed_wheel: InstalledWheel) -> None:
    requires = [line.removeprefix("Requires-Dist: ") for line in installed_wheel.metadata().splitlines()
                if line.startswith("Requires-Dist: ")]
    for name in ("starlette", "uvicorn"):
        found = [r for r in requires if r.lower().startswith(name)]
        assert found, f"{name} is not declared at all"
        assert all('extra == "emulator"' in r for r in found), found


def test_the_wheel_carries_both_schemas_and_the_emulator_data(installed_wheel: InstalledWheel) -> None:
    files = set(installed_wheel.files())
    assert "connector/trackdechets/api_schema.graphql" in files
    assert "td_emulator/schema.graphql" in files
    for data in sorted((ROOT / "td_emulator" / "data").glob("*.json")):
        assert f"td_emulator/data/{data.name}" in files
    assert not [f for f in files if f.startswith("tests/")]


def test_without_the_extra_the_emulator_commands_say_how_to_get_it(
    installed_wheel: InstalledWheel, tmp_path: Path
) -> None:
    # The server stack made unimportable, as in a venv where only `pip install .` ran.
    for command in ("emulator", "demo"):
        done = _python(installed_wheel, "import sys; sys.modules['starlette'] = None; "
                       "sys.modules['uvicorn'] = None; from connector.cli import main; "
                       f"raise SystemExit(main([{command!r}]))", tmp_path)
        assert done.returncode == 69, (command, done.stdout, done.stderr)
        assert "pip install '.[emulator]'" in done.stderr
        assert "Traceback" not in done.stderr
    standalone = _python(installed_wheel, "import sys; sys.modules['uvicorn'] = None; "
                         "sys.modules['starlette'] = None; "
                         "from td_emulator.cli import main; main([])", tmp_path)
    assert standalone.returncode == 69, standalone.stderr
    assert "[emulator]" in standalone.stderr


def test_td_connector_emulator_serves_the_graphql_api_from_the_installed_wheel(
    installed_wheel: InstalledWheel, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "emulator.log").open("wb")
    command = [str(installed_wheel.td_connector), "emulator", "--port", str(port), "--admin"]
    process = subprocess.Popen(command, cwd=tmp_path, env=process_env(None), stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        def answers() -> httpx.Response | None:
            try:
                return httpx.post(f"http://127.0.0.1:{port}/", json={"query": "{ me { email } }"},
                                  headers={"Authorization": f"Bearer {DEMO_TOKEN}"}, timeout=5)
            except httpx.TransportError:
                return None

        response = wait_for(answers, 60, "the emulator to answer")
        assert response.json()["data"]["me"]["email"]
    finally:
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught (uvicorn >= 0.29).
        assert process.wait(timeout=20) in (0, -signal.SIGTERM)
        log.close()
    assert "Shutting down" in (tmp_path / "emulator.log").read_text("utf-8", errors="replace")
