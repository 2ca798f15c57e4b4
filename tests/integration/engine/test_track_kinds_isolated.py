"""One tracked kind failing never stops the others: BSDA tracking breaks, BSDD statuses still come
back; the step is failed (it names the kind) until BSDA tracking works again."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import httpx

from connector.domain.demo_companies import DEMO_TOKEN
from connector.runtime import build_runtime
from connector.service import run_step, sync_once
from connector.settings import load_settings
from td_emulator.config import EmulatorConfig
from td_emulator.testing import serve_in_thread

MAPPINGS = Path(__file__).resolve().parents[3] / "mappings"


def test_a_failing_kind_does_not_stop_the_others(tmp_path: Path) -> None:
    shutil.copytree(MAPPINGS / "data", tmp_path / "data")
    for name in ("bsda_csv.toml", "bsdd_csv.toml"):
        text = (MAPPINGS / name).read_text("utf-8").replace("stable_seconds = ", "# stable_seconds = ")
        text = text.replace('type = "csv"', 'type = "csv"\nstable_seconds = 0', 1)
        (tmp_path / name).write_text(text, "utf-8")
    with serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        (tmp_path / "config.toml").write_text(
            f'[trackdechets]\nurl = "{served.url}"\n[state]\ndir = "var"\n[mappings]\n'
            'paths = ["bsda_csv.toml", "bsdd_csv.toml"]\n[retry]\nmax_attempts = 1\n',
            "utf-8",
        )
        settings = load_settings(tmp_path / "config.toml", env={"TDC_TRACKDECHETS__TOKEN": DEMO_TOKEN})
        runtime = build_runtime(settings, tmp_path)
        try:
            sync_once(runtime, threading.Event())
            records = {r.record_key: r for r in runtime.store.records()}
            assert {r.kind for r in records.values() if r.bsd_id} == {"BSDA", "BSDD"}

            # A BSDA the platform cannot serialise any more: every BSDA list query now errors.
            broken = next(served.emulator.store.newest_first("BSDA"))
            broken["status"] = None
            bsdd = next(r for r in records.values() if r.kind == "BSDD" and r.readable_id)
            httpx.post(f"{served.url}_emulator/bsds/{bsdd.readable_id}/sign-emission",
                       json={"author": "Test"}, timeout=10).raise_for_status()

            result = run_step(runtime.pipeline, "track", threading.Event())
            assert result["ok"] is False
            (cause,) = result["causes"]
            assert cause.startswith("tracking BSDA failed: ")
            assert cause.endswith(": the other kinds go on; see the log")
            after = {r.record_key: r for r in runtime.store.records()}
            assert after[bsdd.record_key].remote_status == "SIGNED_BY_PRODUCER"  # BSDD tracked anyway
        finally:
            runtime.close()
