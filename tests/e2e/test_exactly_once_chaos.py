"""Exactly once under faults and SIGKILLs.

1,000 BSDD and 150 BSDA records, ≥ 10 % 5xx, ≥ 5 % commit-then-drop, an outage window, the daemon
killed at 20 moments (the first while it creates its state store, the others at random) and
restarted each time.

At the end: one BSD per record (by customId for BSDD, by fingerprint for BSDA), none missing, every
record in a terminal visible state.

Every random kill lands once the daemon has started (its start takes one to three seconds, longer
than the random delay): killed before, it would have done nothing.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from connector.demo.run import _asset
from td_emulator.config import EmulatorConfig, FaultConfig, OutageWindow
from td_emulator.testing import serve_in_thread
from tests.e2e.process import FAST_SCHEDULE, start_daemon, wait_for

RECORDS = 1000
BSDA_RECORDS = 150
KILLS = 20
MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"

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
    lines = [header] + [row.replace("BE-2026-0413", f"CHAOS-{i:05d}") for i in range(RECORDS)]
    (workdir / "inbox" / "chaos.csv").write_text("\n".join(lines) + "\n", "utf-8")
    # BSDA has no client id: in-doubt creates are found by fingerprint (emitter SIRET + customInfo).
    (workdir / "inbox_bsda").mkdir()
    bsda = (
        (MAPPINGS / "bsda_csv.toml").read_text("utf-8").replace('folder = "data"', 'folder = "../inbox_bsda"')
    )
    bsda = bsda.replace('type = "csv"', 'type = "csv"\nstable_seconds = 0', 1)
    (workdir / "mappings" / "bsda.toml").write_text(bsda, "utf-8")
    sample = (MAPPINGS / "data" / "bsda_chantiers.csv").read_text("utf-8").splitlines()
    rows = [sample[0]] + [sample[1].replace("CH-2026-031", f"CHAOS-A-{i:05d}") for i in range(BSDA_RECORDS)]
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


@pytest.mark.slow
def test_sigkill_and_faults_never_duplicate_nor_lose_a_bsd(tmp_path: Path) -> None:
    faults = FaultConfig(
        error_probability=0.10,
        drop_after_commit_probability=0.05,
        outages=[OutageWindow(start_seconds=4, end_seconds=7, status=503)],
    )
    config = EmulatorConfig(admin_enabled=True, rate_limit=100_000, faults=faults, random_seed=7)
    rng = random.Random(11)
    with serve_in_thread(config) as served:
        _write_inputs(tmp_path)
        cfg = tmp_path / "config.toml"
        cfg.write_text(
            CONFIG.format(url=served.url) + FAST_SCHEDULE.replace("push_seconds = 0.5", "push_seconds = 0.2"),
            "utf-8",
        )
        for round_ in range(KILLS):
            daemon = start_daemon(tmp_path, cfg, name=f"run{round_}")
            if round_ == 0:
                # The first kill lands while the state store is being created and migrated.
                state_db = tmp_path / "var" / "state.db"
                wait_for(state_db.exists, 30, "the state store file", daemon, poll=0.002)
            else:
                wait_for(lambda p=daemon.log_path: _started(p), 60, "the daemon started", daemon, poll=0.05)
                time.sleep(rng.uniform(0.4, 2.0))
            daemon.process.send_signal(signal.SIGKILL)
            daemon.process.wait(timeout=10)
        final = start_daemon(tmp_path, cfg, name="final")
        try:
            total = RECORDS + BSDA_RECORDS
            wait_for(
                lambda: _states(tmp_path).get("synced", 0) == total, 480, f"{total} records synced", final
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
        assert Counter(f["status"] for f in forms) == Counter({"SEALED": RECORDS})
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
