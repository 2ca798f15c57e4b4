"""The token stays where it was put: a drop folder pointing at its credential file leaks it nowhere.

The token is read from a credential file (as systemd's LoadCredential gives it); a drop-folder
entry is a symbolic link to that file, another to /etc/passwd. Then every command a user runs
(preview, sync --once, status) and every file and state-store table the run leaves are searched
for the token.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from connector.demo.run import _prepare
from connector.domain.demo_companies import DEMO_TOKEN
from td_emulator.testing import ServedEmulator
from tests.e2e.process import process_env, td_connector


def cli(*args: str, cwd: Path, env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in process_env(None).items() if k != "CREDENTIALS_DIRECTORY"}
    env.update(COLUMNS="200", **env_extra)
    return subprocess.run([*td_connector(), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=180, check=False)


def state_tables_text(database: Path) -> str:
    with sqlite3.connect(database) as db:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return "\n".join(repr(row) for name in names for row in db.execute(f'SELECT * FROM "{name}"'))


@pytest.mark.slow  # ~20 s: four commands as processes against the emulator
def test_drop_folder_link_to_the_credential_file_leaks_the_token_nowhere(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, emulator: ServedEmulator
) -> None:
    credentials = tmp_path_factory.mktemp("credentials")
    (credentials / "td-token").write_text(f"{DEMO_TOKEN}\n", encoding="utf-8")
    config = _prepare(tmp_path, emulator.url)
    inbox = tmp_path / "inbox"
    (inbox / "leak.csv").symlink_to(credentials / "td-token")
    (inbox / "passwd.csv").symlink_to("/etc/passwd")
    env = {"CREDENTIALS_DIRECTORY": str(credentials)}

    outputs = []
    preview = cli("preview", "--config", str(config), "--limit", "50", cwd=tmp_path, env_extra=env)
    outputs.append(preview.stdout + preview.stderr)
    synced = cli("sync", "--once", "--config", str(config), cwd=tmp_path, env_extra=env)
    outputs.append(synced.stdout + synced.stderr)
    assert synced.returncode == 1, synced.stdout + synced.stderr  # rejected rows and refused entries
    statuses = [cli(*args, "--config", str(config), cwd=tmp_path, env_extra=env)
                for args in (("status",), ("status", "--json"))]
    outputs += [s.stdout + s.stderr for s in statuses]
    # The token did authenticate (the credential file was read by the settings, as it should be).
    assert [f for e in emulator.emulator.journal for op in e["operations"] for f in op["fields"]
            if f == "createForm"]

    for text in outputs:
        assert DEMO_TOKEN not in text
        assert "root:x:0:0" not in text
    rejected = inbox / "rejected"
    assert (rejected / "leak.csv").is_symlink()
    assert "symbolic link" in (rejected / "leak.csv.error.txt").read_text(encoding="utf-8")
    written = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink()]
    assert any(p.suffix == ".csv" and "receipt" in p.name for p in written)
    for path in written:
        data = path.read_bytes()
        assert DEMO_TOKEN.encode() not in data, path
        assert b"root:x:0:0" not in data, path
    tables = state_tables_text(tmp_path / "var" / "state.db")
    assert DEMO_TOKEN not in tables
    assert "root:x:0:0" not in tables
    assert "leak.csv" in tables
    assert "leak.csv" in statuses[1].stdout  # the refused entry is reported...
    assert "symbolic link" in statuses[1].stdout  # ...with why
