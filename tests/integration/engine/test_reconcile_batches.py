"""In-doubt reconciliation at volume: the look-ups travel merged, so a pass stays short.

A proxy that answers 5xx to whole chunks (or drops their answers) leaves hundreds of records in
doubt at once. Looked up one request per record, each with its own retries, the pass that
reconciles them lasted minutes (the e2e chaos test's final daemon spent most of its time there).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from connector.demo.run import _asset
from connector.engine.reconcile import reconcile
from connector.service import run_step
from connector.state.models import Record
from connector.state.store import utcnow
from connector.trackdechets.errors import Rejected
from td_emulator.config import EmulatorConfig, FaultConfig
from td_emulator.testing import ServedEmulator, serve_in_thread
from tests.integration.engine.support import drop, runtime_for
from tests.integration.engine.test_exactly_once_edges import MAPPINGS, bsda_mapping

RECORDS = 30


@pytest.fixture
def emulator() -> Iterator[ServedEmulator]:
    with serve_in_thread(EmulatorConfig(admin_enabled=True, rate_limit=100_000)) as served:
        yield served


def _rows(count: int) -> str:
    template = _asset("enlevements_mars.csv").decode("utf-8").splitlines()
    header, row = template[0], template[2]
    return "\n".join([header] + [row.replace("BE-2026-0413", f"LOT-{i:04d}") for i in range(count)]) + "\n"


def test_thirty_in_doubt_seals_are_read_back_in_two_requests_and_none_is_sent_again(
    tmp_path: Path, emulator: ServedEmulator
) -> None:
    runtime = runtime_for(tmp_path, emulator.url, extra="[safety]\nmax_creations_per_run = 1000\n")
    runtime.pipeline.options.reconcile_grace_seconds = 0
    stop = threading.Event()
    try:
        drop(tmp_path, "a.csv", _rows(RECORDS))
        run_step(runtime.pipeline, "ingest", stop)
        # Every answer is lost after its commit: the creates, then (once the creates are adopted)
        # the seals are all committed on the server and in doubt here.
        emulator.emulator.faults = FaultConfig(drop_after_commit_probability=1.0)
        run_step(runtime.pipeline, "push", stop)
        run_step(runtime.pipeline, "push", stop)
        in_doubt = Counter((r.state, r.intent_op) for r in runtime.store.records())
        assert in_doubt == Counter({("in_flight", "seal"): RECORDS})

        emulator.emulator.faults = FaultConfig()
        before = len(emulator.emulator.journal)
        counts = run_step(runtime.pipeline, "push", stop)
        requests = list(emulator.emulator.journal)[before:]
    finally:
        runtime.close()
    assert counts["sealed_adopted"] == RECORDS
    sent = [op["operationName"] for entry in requests for op in entry["operations"]]
    assert not any(name and name.startswith("Seal") for name in sent)  # nothing sealed twice
    assert len(requests) == 2  # 25 reads to a request, not one request per record
    forms = list(emulator.emulator.store.newest_first("BSDD"))
    assert Counter(f["status"] for f in forms) == Counter({"SEALED": RECORDS})


def test_thirty_in_doubt_bsda_creates_are_found_by_fingerprint_in_two_requests(
    tmp_path: Path, emulator: ServedEmulator
) -> None:
    mapping = bsda_mapping()
    runtime = runtime_for(
        tmp_path, emulator.url, mapping_text=mapping, extra="[safety]\nmax_creations_per_run = 1000\n"
    )
    runtime.pipeline.options.reconcile_grace_seconds = 0
    stop = threading.Event()
    sample = (MAPPINGS / "data" / "bsda_chantiers.csv").read_text("utf-8").splitlines()
    rows = [sample[0]] + [sample[1].replace("CH-2026-031", f"SITE-{i:04d}") for i in range(RECORDS)]
    try:
        drop(tmp_path, "a.csv", "\n".join(rows) + "\n")
        run_step(runtime.pipeline, "ingest", stop)
        emulator.emulator.faults = FaultConfig(drop_after_commit_probability=1.0)
        run_step(runtime.pipeline, "push", stop)
        in_doubt = Counter((r.state, r.intent_op) for r in runtime.store.records())
        assert in_doubt == Counter({("in_flight", "create"): RECORDS})

        emulator.emulator.faults = FaultConfig()
        before = len(emulator.emulator.journal)
        reconcile(runtime.pipeline, list(runtime.store.records()))
        requests = list(emulator.emulator.journal)[before:]
        counts = run_step(runtime.pipeline, "push", stop)
    finally:
        runtime.close()
    assert len(requests) == 2  # every record's listing: 25 to a request
    assert counts["created_adopted"] == RECORDS
    assert counts.get("created", 0) == 0  # nothing created a second time
    per_info = Counter(b["emitter"]["customInfo"] for b in emulator.emulator.store.newest_first("BSDA"))
    assert per_info == Counter({f"SITE-{i:04d}": 1 for i in range(RECORDS)})


def test_an_in_doubt_record_whose_look_up_keeps_failing_holds_back_no_other_record(
    tmp_path: Path, emulator: ServedEmulator
) -> None:
    """Its BSD is gone (deleted on the platform, say): reading it fails at every pass. Before,
    that failure ended each push pass at its first page, and every record after it waited for
    ever; now it stays in doubt alone, with the reason, looked up again after a growing wait."""
    runtime = runtime_for(tmp_path, emulator.url, extra="[safety]\nmax_creations_per_run = 1000\n")
    runtime.pipeline.options.reconcile_grace_seconds = 0
    stop = threading.Event()
    try:
        drop(tmp_path, "a.csv", _rows(6))
        run_step(runtime.pipeline, "ingest", stop)
        emulator.emulator.faults = FaultConfig(drop_after_commit_probability=1.0)
        run_step(runtime.pipeline, "push", stop)
        run_step(runtime.pipeline, "push", stop)  # creates adopted, seals in doubt
        emulator.emulator.faults = FaultConfig()
        with runtime.store.session() as session:
            gone = session.scalars(select(Record).where(Record.record_key == "LOT-0000")).one()
            gone.bsd_id = "cgone0000000000000000000"
        drop(tmp_path, "b.csv", _rows(40).replace("LOT-", "NEW-"))
        run_step(runtime.pipeline, "ingest", stop)

        counts = run_step(runtime.pipeline, "push", stop)
        rows = {r.record_key: r for r in runtime.store.records()}
    finally:
        runtime.close()
    assert counts["ok"] is True
    assert counts["in_doubt_lookup_failed"] == 1
    assert counts["sealed_adopted"] == 5
    assert counts["created"] == 40
    stuck = rows.pop("LOT-0000")
    assert (stuck.state, stuck.intent_op) == ("in_flight", "seal")  # still in doubt, never resent
    assert "could not be looked up" in (stuck.last_error or "")
    assert stuck.next_attempt_at is not None
    assert stuck.next_attempt_at > utcnow()
    assert Counter(r.state for r in rows.values()) == Counter({"synced": 45})


def test_a_failed_look_up_raises_for_a_caller_that_would_take_not_found_for_create_it(
    tmp_path: Path, emulator: ServedEmulator
) -> None:
    """rebuild-state treats "not applied" as "to create": it must never get that for a failure."""
    runtime = runtime_for(tmp_path, emulator.url)
    runtime.pipeline.options.reconcile_grace_seconds = 0
    stop = threading.Event()
    try:
        drop(tmp_path, "a.csv", _rows(2))
        run_step(runtime.pipeline, "ingest", stop)
        emulator.emulator.faults = FaultConfig(drop_after_commit_probability=1.0)
        run_step(runtime.pipeline, "push", stop)
        run_step(runtime.pipeline, "push", stop)  # creates adopted, seals in doubt
        emulator.emulator.faults = FaultConfig()
        with runtime.store.session() as session:
            session.scalars(select(Record).where(Record.record_key == "LOT-0000")).one().bsd_id = "cgone0"
        records = list(runtime.store.records())
        with pytest.raises(Rejected):
            reconcile(runtime.pipeline, records)
        verdicts = {v.record_id: v for v in reconcile(runtime.pipeline, records, keep_going=True)}
    finally:
        runtime.close()
    by_key = {r.record_key: verdicts[r.id] for r in records}
    assert isinstance(by_key["LOT-0000"].failed, Rejected)
    assert by_key["LOT-0001"].applied
