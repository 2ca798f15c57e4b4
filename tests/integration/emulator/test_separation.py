"""The emulator and the connector are separable: neither imports the other at run time.

The connector may reach ``td_emulator`` only from inside the functions of ``td-connector demo`` and
``td-connector emulator``; the emulator never imports ``connector``. Both directions are checked on
the source (every import statement) and at run time (a fresh interpreter's ``sys.modules``).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from connector.domain.demo_companies import DEMO_COMPANIES, DEMO_TOKEN, OTHER_TOKEN
from td_emulator.demo_seed import DEMO_ACCOUNTS
from td_emulator.demo_seed import DEMO_TOKEN as EMULATOR_DEMO_TOKEN
from td_emulator.demo_seed import OTHER_TOKEN as EMULATOR_OTHER_TOKEN

ROOT = Path(__file__).resolve().parents[3]
# (file, enclosing function) pairs allowed to import the emulator, lazily.
LAZY_EMULATOR_IMPORTS = {
    ("connector/cli.py", "emulator_missing"),
    ("connector/cli.py", "cmd_emulator"),
    ("connector/demo/run.py", "run_demo"),
}


def _imports(path: Path) -> list[tuple[str, str | None, int]]:
    """(imported module, enclosing function or None at module level, line) of every import."""
    tree = ast.parse(path.read_text("utf-8"))
    found: list[tuple[str, str | None, int]] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, child.name)
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, function, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child.module, function, child.lineno))
            visit(child, function)

    visit(tree, None)
    return found


def _top(module: str) -> str:
    return module.split(".")[0]


def test_the_emulator_never_imports_the_connector() -> None:
    offenders = [f"{path.relative_to(ROOT)}:{line} imports {module}"
                 for path in sorted((ROOT / "td_emulator").rglob("*.py"))
                 for module, _, line in _imports(path) if _top(module) == "connector"]
    assert offenders == []


def test_the_connector_imports_the_emulator_only_lazily_in_demo_and_emulator_commands() -> None:
    offenders = []
    for path in sorted((ROOT / "connector").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        for module, function, line in _imports(path):
            if _top(module) in ("td_emulator", "starlette", "uvicorn") and \
                    (relative, function) not in LAZY_EMULATOR_IMPORTS:
                offenders.append(f"{relative}:{line} ({function or 'module level'}) imports {module}")
    assert offenders == []


def test_the_check_sees_an_import_hidden_in_a_function(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\n\ndef f():\n    if True:\n        from td_emulator.testing import x\n")
    assert ("td_emulator.testing", "f", 5) in _imports(sample)


_PROBE = """
import importlib, json, pkgutil, sys
import connector
names = sorted(m.name for m in pkgutil.walk_packages(connector.__path__, "connector.")
               if m.name != "connector.__main__")
for name in names:
    importlib.import_module(name)
from connector.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("td_emulator", "starlette", "uvicorn"))
print(json.dumps({"imported": len(names), "loaded": loaded}))
"""


def test_importing_every_connector_module_and_its_help_loads_no_emulator_code(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["imported"] > 50  # the walk did import the whole package
    assert result["loaded"] == []


@pytest.mark.parametrize("command", ["emulator", "demo"])
def test_without_the_server_stack_the_commands_exit_69_and_say_how_to_install_it(
    command: str, tmp_path: Path
) -> None:
    code = ("import sys; sys.modules['starlette'] = None; sys.modules['uvicorn'] = None; "
            f"from connector.cli import main; raise SystemExit(main([{command!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          timeout=60, check=False)
    assert done.returncode == 69, done.stderr
    assert "pip install '.[emulator]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_emulator_demo_accounts_are_the_connector_demo_companies() -> None:
    """Two copies on purpose (separable packages); they must name the same companies and tokens."""
    assert (EMULATOR_DEMO_TOKEN, EMULATOR_OTHER_TOKEN) == (DEMO_TOKEN, OTHER_TOKEN)
    emulator = {a.key: (a.siret, a.name, a.address, a.contact, a.phone, a.mail, a.company_types)
                for a in DEMO_ACCOUNTS}
    connector = {key: (c.siret, c.name, c.address, c.contact, c.phone, c.mail, c.profiles)
                 for key, c in DEMO_COMPANIES.items()}
    assert emulator == connector


def test_td_emulator_without_its_server_stack_exits_69_and_says_how_to_install_it(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['starlette'] = None; sys.modules['uvicorn'] = None; "
            "from td_emulator.cli import main; main([])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          timeout=60, check=False)
    assert done.returncode == 69, done.stderr
    assert "[emulator]" in done.stderr
    assert "Traceback" not in done.stderr
