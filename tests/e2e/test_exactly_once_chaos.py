"""Exactly once under faults and SIGKILLs, with a group's token.

The token holds 200 companies (as a collector's or a group's does); 1,000 BSDD records spread over
160 of them and 150 BSDA records over 150, ≥ 10 % 5xx, ≥ 5 % commit-then-drop, an outage window, the daemon
killed at 20 moments (the first while it creates its state store, the others at random) and
restarted each time; once, its state store is deleted under it instead (it must stop creating), and
``td-connector rebuild-state`` adopts what the lost store had made before the run goes on.

At the end: one BSD per record (by customId for BSDD, by fingerprint for BSDA), none missing, every
record in a terminal visible state. Then the other parties sign 10 % of the BSDs (of every company
involved) and each of those statuses must reach the receipts.

Every random kill lands once the daemon has started (its start takes one to three seconds, longer
than the random delay): killed before, it would have done nothing.
"""

from __future__ import annotations

import csv
import random
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from connector.demo.run import _asset
from td_emulator.config import EmulatorConfig, FaultConfig, OutageWindow
from td_emulator.seed import GROUP_TOKEN, group_sirets
from td_emulator.testing import serve_in_thread
from tests.e2e.process import FAST_SCHEDULE, DaemonProcess, start_daemon, wait_for
from tests.e2e.state_loss import delete_state_store, run_rebuild_state, wait_until_refusing

RECORDS = 1000
BSDA_RECORDS = 150
KILLS = 20
LOSE_STATE_AT = 4
"""The round whose daemon loses its state store (deleted while it runs) instead of a plain kill."""
MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
COMPANIES = 200
SIRETS = group_sirets(COMPANIES)
BSDD_COMPANIES = 160
"""BSDD records of record i are emitted by company i % 160; BSDA ones by company 50 + i % 150."""
PRODUCER = "85243162000123"
"""The producer of the sample rows, replaced by the group's companies."""
MOVED_EVERY = 10
"""One BSD in ten is signed by the other parties at the end."""

CONFIG = """
[trackdechets]
url = "{url}"
timeout_seconds = 2
rate_limit_per_minute = 100000

[state]
dir = "var"

[mappings]
paths = ["mappings/*.toml"]

[retry]
initial_backoff_seconds = 0.2
max_backoff_seconds = 2

[safety]
max_creations_per_run = 100000
"""


def _write_inputs(workdir: Path) -> None:
    (workdir / "inbox").mkdir()
    (workdir / "mappings").mkdir()
    mapping = _asset("bsdd_csv.toml").decode("utf-8").replace('folder = "inbox"', 'folder = "../inbox"')
    (workdir / "mappings" / "bsdd.toml").write_text(mapping, "utf-8")
    template = _asset("enlevements_mars.csv").decode("utf-8").splitlines()
    header, row = template[0], template[2]
    lines = [header] + [
        row.replace("BE-2026-0413", f"CHAOS-{i:05d}").replace(PRODUCER, SIRETS[i % BSDD_COMPANIES])
        for i in range(RECORDS)
    ]
    (workdir / "inbox" / "chaos.csv").write_text("\n".join(lines) + "\n", "utf-8")
    # BSDA has no client id: in-doubt creates are found by fingerprint (emitter SIRET + customInfo).
    (workdir / "inbox_bsda").mkdir()
    bsda = (
        (MAPPINGS / "bsda_csv.toml").read_text("utf-8").replace('folder = "data"', 'folder = "../inbox_bsda"')
    )
    bsda = bsda.replace('type = "csv"', 'type = "csv"\nstable_seconds = 0', 1)
    emitter = f'"emitter.company.siret" = {{ const = "{PRODUCER}" }}'
    assert emitter in bsda
    bsda = bsda.replace(emitter, '"emitter.company.siret" = { column = "siret_emetteur" }')
    (workdir / "mappings" / "bsda.toml").write_text(bsda, "utf-8")
    sample = (MAPPINGS / "data" / "bsda_chantiers.csv").read_text("utf-8").splitlines()
    rows = [sample[0] + ";siret_emetteur"] + [
        sample[1].replace("CH-2026-031", f"CHAOS-A-{i:05d}") + f";{SIRETS[50 + i % 150]}"
        for i in range(BSDA_RECORDS)
    ]
    (workdir / "inbox_bsda" / "bsda_chaos.csv").write_text("\n".join(rows) + "\n", "utf-8")


def _query(workdir: Path, sql: str) -> list[tuple[object, ...]]:
    """Read the daemon's state store directly: cheap enough to poll (this process also runs the
    emulator, so a heavy poll slows the server the daemon talks to)."""
    path = workdir / "var" / "state.db"
    if not path.exists():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as connection:
            return connection.execute(sql).fetchall()
    except sqlite3.Error:  # the schema may not exist yet in the first instants
        return []


def _states(workdir: Path) -> Counter[str]:
    return Counter({str(state): int(str(n)) for state, n in _query(workdir, _BY_STATE)})


_BY_STATE = "SELECT state, COUNT(*) FROM records GROUP BY state"
_STUCK = (
    "SELECT kind, state, next_op, intent_op, COUNT(*), MIN(attempts), MAX(attempts), MIN(intent_at), "
    "MAX(next_attempt_at), MAX(last_error) FROM records WHERE state != 'synced' GROUP BY 1, 2, 3, 4"
)


def _why_not_synced(workdir: Path) -> str:
    """What the records that did not reach ``synced`` wait for, and what the daemon said."""
    rows = "\n".join(repr(row) for row in _query(workdir, _STUCK))
    log = (workdir / "final.log").read_text("utf-8", errors="replace").splitlines()
    telling = [line for line in log if '"step_failed"' in line or '"step": "push"' in line][-15:]
    return (
        "(kind, state, next_op, intent_op, count, min attempts, max attempts, min intent_at, "
        f"max next_attempt_at, last_error):\n{rows}\nfinal daemon:\n" + "\n".join(telling)
    )


def _started(log_path: Path) -> bool:
    return '"daemon_started"' in log_path.read_text("utf-8", errors="replace")


GROUP_ENV = {"TDC_TRACKDECHETS__TOKEN": GROUP_TOKEN}


def _bsd_ids(workdir: Path) -> list[tuple[str, str]]:
    """(record key, BSD id) of every record, in key order."""
    query = "SELECT record_key, bsd_id FROM records WHERE bsd_id IS NOT NULL ORDER BY record_key"
    return [(str(key), str(bsd_id)) for key, bsd_id in _query(workdir, query)]


def _other_parties_sign(url: str, bsds: list[tuple[str, str]]) -> dict[str, str]:
    """The producers sign these BSDs on the platform (as they would in its UI); key → new status."""
    moved: dict[str, str] = {}
    with httpx.Client(base_url=url, timeout=10) as admin:
        for key, bsd_id in bsds:
            answer = admin.post(f"_emulator/bsds/{bsd_id}/sign-emission")
            assert answer.status_code == 200, answer.text
            moved[key] = admin.get(f"_emulator/bsds/{bsd_id}").json()["status"]
    assert len(moved) >= (RECORDS + BSDA_RECORDS) // MOVED_EVERY
    assert set(moved.values()) == {"SIGNED_BY_PRODUCER"}
    return moved


def _receipt_statuses(workdir: Path, wanted: dict[str, str]) -> dict[str, str]:
    """The remote status the receipts beside both drop folders show for the keys of ``wanted``."""
    found: dict[str, str] = {}
    for path in workdir.glob("inbox*/receipts/*.receipt.csv"):
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for row in csv.DictReader(handle, delimiter=";"):
                if row["key"] in wanted:
                    found[row["key"]] = row["remote_status"]
    return found


def _lose_state_mid_run(workdir: Path, config: Path, daemon: DaemonProcess) -> None:
    """Delete the state store under the daemon; it stops creating; kill it; rebuild the state."""
    # Once this daemon works on its store: deleted before it opened it, the store would be new.
    created = lambda: any(line.get("event") == "bsd_created" for line in daemon.log_lines())  # noqa: E731
    wait_for(created, 60, "a BSD created by this daemon", daemon)
    delete_state_store(workdir)
    wait_until_refusing(daemon)
    daemon.process.send_signal(signal.SIGKILL)
    daemon.process.wait(timeout=10)
    for _attempt in range(5):  # the faults hit rebuild-state's reads too; running it again is safe
        done = run_rebuild_state(workdir, config, token=GROUP_TOKEN)
        if done.returncode == 0:
            return
    raise AssertionError(f"rebuild-state failed:\n{done.stdout}\n{done.stderr}")


@pytest.mark.slow
def test_sigkill_and_faults_never_duplicate_nor_lose_a_bsd(tmp_path: Path) -> None:
    faults = FaultConfig(
        error_probability=0.10,
        drop_after_commit_probability=0.05,
        outages=[OutageWindow(start_seconds=4, end_seconds=7, status=503)],
    )
    config = EmulatorConfig(
        admin_enabled=True, rate_limit=100_000, faults=faults, random_seed=7, group_companies=COMPANIES
    )
    rng = random.Random(11)
    with serve_in_thread(config) as served:
        _write_inputs(tmp_path)
        cfg = tmp_path / "config.toml"
        cfg.write_text(
            CONFIG.format(url=served.url) + FAST_SCHEDULE.replace("push_seconds = 0.5", "push_seconds = 0.2"),
            "utf-8",
        )
        for round_ in range(KILLS):
            daemon = start_daemon(tmp_path, cfg, name=f"run{round_}", extra_env=GROUP_ENV)
            if round_ == 0:
                # The first kill lands while the state store is being created and migrated.
                state_db = tmp_path / "var" / "state.db"
                wait_for(state_db.exists, 30, "the state store file", daemon, poll=0.002)
            elif round_ == LOSE_STATE_AT:
                _lose_state_mid_run(tmp_path, cfg, daemon)
                continue
            else:
                wait_for(lambda p=daemon.log_path: _started(p), 60, "the daemon started", daemon, poll=0.05)
                time.sleep(rng.uniform(0.4, 2.0))
            daemon.process.send_signal(signal.SIGKILL)
            daemon.process.wait(timeout=10)
        final = start_daemon(tmp_path, cfg, name="final", extra_env=GROUP_ENV)
        try:
            total = RECORDS + BSDA_RECORDS
            wait_for(
                lambda: _states(tmp_path).get("synced", 0) == total, 600, f"{total} records synced", final
            )
            moved = _other_parties_sign(served.url, _bsd_ids(tmp_path)[::MOVED_EVERY])
            wait_for(
                lambda: _receipt_statuses(tmp_path, moved) == moved, 300, "moved statuses written back", final
            )
        except AssertionError as exc:  # the wait only matters on a loaded machine, or on failure
            raise AssertionError(f"{exc}\n{_why_not_synced(tmp_path)}") from None
        finally:
            assert final.stop() == 0

        forms = [f for f in served.emulator.store.newest_first("BSDD") if not f.get("isDeleted")]
        per_key = Counter(f.get("customId") for f in forms)
        duplicates = {k: n for k, n in per_key.items() if n > 1}
        assert duplicates == {}
        assert {f"CHAOS-{i:05d}" for i in range(RECORDS)} <= set(per_key)
        moved_forms = sum(1 for key in moved if not key.startswith("CHAOS-A-"))
        assert Counter(f["status"] for f in forms) == Counter(
            {"SEALED": RECORDS - moved_forms, "SIGNED_BY_PRODUCER": moved_forms}
        )
        # Spread over the group's companies, beyond the first page of myCompanies.
        emitters = {(f.get("emitter") or {}).get("company", {}).get("siret") for f in forms}
        assert len(emitters) == BSDD_COMPANIES
        bsdas = list(served.emulator.store.newest_first("BSDA"))
        per_info = Counter((b.get("emitter") or {}).get("customInfo") for b in bsdas)
        assert {k: n for k, n in per_info.items() if n > 1} == {}
        assert {f"CHAOS-A-{i:05d}" for i in range(BSDA_RECORDS)} <= set(per_info)
        assert all(not b["isDraft"] for b in bsdas)

        # The faults really happened, and in-doubt creates really were found again.
        journal = list(served.emulator.journal)
        statuses = Counter(e.get("status") for e in journal)
        assert sum(statuses.get(s, 0) for s in (502, 503, 504)) >= 20
        assert sum(1 for e in journal if e.get("dropped")) >= 10
        logs = "".join(p.read_text("utf-8", errors="replace") for p in tmp_path.glob("*.log"))
        assert '"in_doubt_adopted"' in logs
