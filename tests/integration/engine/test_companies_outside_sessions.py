"""The token's company list is read, and records requeued, with no state-store session open."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from connector.engine.reconcile import reconcile
from connector.runtime import Runtime
from connector.service import run_step
from td_emulator.config import EmulatorConfig, FaultConfig
from td_emulator.seed import GROUP_TOKEN, group_sirets
from td_emulator.testing import ServedEmulator, serve_in_thread
from tests.integration.engine.support import drop, runtime_for
from tests.integration.engine.test_many_companies import DESTINATION, OUTSIDER, rows

SIRETS = group_sirets(40)


@pytest.fixture
def group() -> Iterator[ServedEmulator]:
    with serve_in_thread(EmulatorConfig(admin_enabled=True, group_companies=40)) as served:
        yield served


def step(runtime: Runtime, name: str) -> dict[str, int]:
    return run_step(runtime.pipeline, name, threading.Event())


def test_a_company_found_while_tracking_requeues_its_rejected_records(
    tmp_path: Path, group: ServedEmulator
) -> None:
    """Before, the recheck read ran inside track's session and the requeue waited on it (SQLite:
    ``database is locked`` after 30 s) while the new list was already kept: never requeued."""
    runtime = runtime_for(tmp_path, group.url, token=GROUP_TOKEN)
    now = [1_000.0]
    runtime.pipeline.companies.clock = lambda: now[0]
    options = runtime.pipeline.options
    roles = group.emulator.registry.user_for(GROUP_TOKEN).roles  # type: ignore[union-attr]
    try:
        records = [("LEFT-1", SIRETS[3], DESTINATION), ("LATER-1", OUTSIDER, DESTINATION)]
        drop(tmp_path, "a.csv", rows(records))
        step(runtime, "ingest")
        assert step(runtime, "push").get("rejected") == 1
        del roles[SIRETS[3]]  # LEFT-1 (live) names no company of the token any more
        now[0] += options.companies_refresh_seconds
        assert step(runtime, "track").get("untracked") == 1
        roles[OUTSIDER] = "ADMIN"
        now[0] += options.companies_recheck_seconds  # LEFT-1 has the list read again
        counts = step(runtime, "track")
        assert counts["ok"] is True
        states = {r.record_key: r.state for r in runtime.store.records()}
        assert states["LATER-1"] == "pending"
        assert step(runtime, "push").get("created") == 1
    finally:
        runtime.close()


def test_an_unreadable_company_list_fails_only_the_in_doubt_bsdd_records(
    tmp_path: Path, group: ServedEmulator
) -> None:
    runtime = runtime_for(tmp_path, group.url, token=GROUP_TOKEN)
    runtime.pipeline.options.reconcile_grace_seconds = 0
    try:
        doubt = [("DOUBT-1", SIRETS[1], DESTINATION), ("DOUBT-2", SIRETS[2], DESTINATION)]
        drop(tmp_path, "a.csv", rows(doubt))
        step(runtime, "ingest")
        group.emulator.faults = FaultConfig(drop_after_commit_probability=1.0)
        assert step(runtime, "push").get("in_doubt") == 2
        group.emulator.faults = FaultConfig()
        runtime.pipeline.companies.org_ids = None  # a restarted daemon: never read
        runtime.pipeline.client._token = SecretStr("revoked-token")  # the read fails
        records = list(runtime.store.records())
        verdicts = reconcile(runtime.pipeline, records, keep_going=True)
    finally:
        runtime.close()
    assert len(verdicts) == 2
    assert all(v.failed is not None and not v.applied for v in verdicts)
