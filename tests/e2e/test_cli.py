"""The `td-connector` commands as a user runs them, each in its own process."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from connector.demo.run import _prepare
from connector.domain.demo_companies import DEMO_TOKEN
from td_emulator.testing import ServedEmulator

from .process import process_env, td_connector


def cli(
    *args: str, cwd: Path, token: str | None = DEMO_TOKEN, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {**process_env(token), "COLUMNS": "200"}
    return subprocess.run(
        [*td_connector(), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def mutations(emulator: ServedEmulator) -> list[str]:
    return [
        f
        for e in emulator.emulator.journal
        for op in e["operations"]
        for f in op["fields"]
        if f in ("createForm", "markAsSealed", "updateForm")
    ]


def test_demo_runs_on_embedded_defaults(tmp_path: Path) -> None:
    result = cli("demo", cwd=tmp_path, token=None, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo: ok" in result.stdout
    assert "BE-2026-0415" in result.stdout  # the rejected row is shown with its reason
    assert DEMO_TOKEN not in result.stdout + result.stderr


def test_check_preview_sync_status_and_retry(tmp_path: Path, emulator: ServedEmulator) -> None:
    config = _prepare(tmp_path, emulator.url)

    checked = cli("check", "--config", str(config), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "token of" in checked.stdout
    bad_token = cli("check", "--config", str(config), cwd=tmp_path, token="not-a-token")
    assert bad_token.returncode == 1
    assert "not-a-token" not in bad_token.stdout + bad_token.stderr

    preview = cli("preview", "--config", str(config), "--limit", "2", "--json", cwd=tmp_path)
    assert preview.returncode == 0, preview.stderr
    assert len([line for line in preview.stdout.splitlines() if line.startswith("{")]) == 4  # 2 per mapping
    preview = cli("preview", "--config", str(config), "--limit", "5", "--json", cwd=tmp_path)
    assert preview.returncode == 1  # BE-2026-0415 and ENL-1004 are invalid: preview says so
    lines = [json.loads(line) for line in preview.stdout.splitlines() if line.startswith("{")]
    errors = {line["key"]: line["error"] for line in lines if "error" in line}
    assert set(errors) == {"BE-2026-0415", "ENL-1004"}
    assert "siret_producteur" in errors["BE-2026-0415"]
    documents = [line for line in lines if "query" in line]
    assert documents
    assert all(set(d) >= {"query", "variables"} for d in documents)
    assert documents[0]["query"].startswith("mutation CreateBsdd")
    assert mutations(emulator) == []  # preview sends nothing

    synced = cli("sync", "--once", "--config", str(config), cwd=tmp_path)
    assert synced.returncode == 1, synced.stdout + synced.stderr  # two records are rejected
    assert "rejected" in synced.stdout
    status = cli("status", "--config", str(config), "--json", cwd=tmp_path)
    assert status.returncode == 0
    report = json.loads(status.stdout)
    totals: dict[str, int] = {}
    for per_state in report["counts"].values():
        for state, n in per_state.items():
            totals[state] = totals.get(state, 0) + n
    assert totals == {"synced": 7, "rejected": 2}
    assert {r["key"] for r in report["rejected"]} == {"BE-2026-0415", "ENL-1004"}
    assert all(r["error"] for r in report["rejected"])
    assert [r["step"] for r in report["last_runs"][:4]] == ["writeback", "track", "push", "ingest"]
    assert 0 < report["rate_budget"]["remaining"] <= 1000  # as the API's headers last said

    # The rejected rows are still invalid: retry says so and changes nothing.
    retried = cli("retry", "--config", str(config), "--all-rejected", cwd=tmp_path)
    assert retried.returncode == 1
    assert "still invalid" in retried.stdout

    # A second sync sends nothing new: every valid record exists once.
    before = mutations(emulator)
    again = cli("sync", "--once", "--config", str(config), cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert mutations(emulator) == before


def test_retry_replays_a_record_once_its_mapping_is_fixed(tmp_path: Path, emulator: ServedEmulator) -> None:
    config = _prepare(tmp_path, emulator.url)
    (tmp_path / "mappings" / "bsdd_sqlite.toml").unlink()
    mapping = tmp_path / "mappings" / "bsdd_csv.toml"
    good = mapping.read_text("utf-8")
    # A mapping mistake: the waste code column is sent as is ("130205*" is not the platform's format).
    mapping.write_text(
        good.replace('transforms = ["waste_code"], required = true', "required = true"), "utf-8"
    )
    first = cli("sync", "--once", "--config", str(config), cwd=tmp_path)
    assert first.returncode == 1
    status = json.loads(cli("status", "--config", str(config), "--json", cwd=tmp_path).stdout)
    keys = {r["key"] for r in status["rejected"]}
    assert "BE-2026-0412" in keys
    mapping.write_text(good, "utf-8")
    dry = cli("retry", "--config", str(config), "--key", "BE-2026-0412", "--dry-run", cwd=tmp_path)
    assert "would replay" in dry.stdout
    replay = cli("retry", "--config", str(config), "--key", "BE-2026-0412", cwd=tmp_path)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "replayed (create)" in replay.stdout
    cli("sync", "--once", "--config", str(config), cwd=tmp_path)
    status = json.loads(cli("status", "--config", str(config), "--json", cwd=tmp_path).stdout)
    assert "BE-2026-0412" not in {r["key"] for r in status["rejected"]}
    creates = [f for f in mutations(emulator) if f == "createForm"]
    assert len(creates) == len(set(creates)) or creates  # sanity: the journal was read
    forms = [f for f in emulator.emulator.store.newest_first("BSDD") if f.get("customId") == "BE-2026-0412"]
    assert len(forms) == 1


def test_a_configuration_error_exits_78_with_every_problem_and_no_traceback(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[trackdechets]\nurl = "ftp://nowhere"\ntimout = 3\n[nope]\n', "utf-8")
    result = cli("check", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 78
    assert "Traceback" not in result.stderr
    assert "timout" in result.stderr
    assert "nope" in result.stderr
    assert "trackdechets.url" in result.stderr


def test_the_production_url_is_refused_unless_enabled(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[trackdechets]\nurl = "https://api.trackdechets.beta.gouv.fr/"\n', "utf-8")
    result = cli("check", "--config", str(config), "--offline", cwd=tmp_path)
    assert result.returncode == 78
    assert "allow_production" in result.stderr


def test_a_broken_mapping_is_refused_at_start_with_file_field_and_suggestion(
    tmp_path: Path, emulator: ServedEmulator
) -> None:
    config = _prepare(tmp_path, emulator.url)
    mapping = tmp_path / "mappings" / "bsdd_csv.toml"
    text = mapping.read_text("utf-8")
    text = text.replace('"wasteDetails.name" = "designation"', '"wasteDetails.nom" = "designation"')
    mapping.write_text(text, "utf-8")
    erp = tmp_path / "mappings" / "bsdd_sqlite.toml"
    erp.write_text(
        erp.read_text("utf-8").replace('"wasteDetails.name" = "libelle"', '"wasteDetails.name" = "libele"')
    )
    result = cli("run", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 78
    assert "Traceback" not in result.stderr
    assert 'bsdd_csv.toml: fields."wasteDetails.nom"' in result.stderr
    assert '"wasteDetails.name"' in result.stderr  # the closest valid path is suggested
    assert mutations(emulator) == []  # refused before anything was sent
    # Once the mapping compiles, the columns are checked against the table, before anything is sent.
    mapping.write_text(text.replace('"wasteDetails.nom"', '"wasteDetails.name"'), "utf-8")
    result = cli("check", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 78
    assert (
        'bsdd_sqlite.toml: fields."wasteDetails.name": unknown column "libele" (did you mean "libelle"?)'
        in (result.stderr)
    )
