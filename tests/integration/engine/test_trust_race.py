"""Push and ingest run concurrently: an ingest that stores records already carrying BSD ids (the
state folder was lost) between push's trust check and its creates must not lead to one create.

The interleaving is driven, not raced: the push's first trust check runs, then the ingest stores
its whole batch, then the push goes on.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from connector.domain.demo_companies import DEMO_TOKEN
from connector.engine import push as push_module
from connector.engine import rebuild as rebuild_module
from connector.engine.ingest import ingest
from connector.engine.push import push
from connector.engine.rebuild import rebuild_state
from connector.engine.reconcile import Verdict
from connector.engine.trust import creates_refused
from connector.errors import StateNotTrusted
from connector.runtime import Runtime, build_runtime
from connector.service import sync_once
from connector.settings import load_settings
from connector.state.identity import ensure_identity, mark_trusted, read_identity
from connector.state.models import Record
from td_emulator.config import EmulatorConfig
from td_emulator.testing import serve_in_thread
from tests.db_urls import dialect_params, temporary_database
from tests.integration.engine.test_lost_state_sql import _mapping, _runtime, enlevements, metadata

ROWS = 12


def _erp_carrying_ids(path: Path) -> str:
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    metadata.create_all(engine)
    stamp = datetime(2026, 3, 2, 8, 0, 0)
    with engine.begin() as conn:
        conn.execute(
            enlevements.insert(),
            [
                {
                    "numero": f"ERP-{i:05d}", "code_dechet": "130205*", "libelle": "Huiles moteur",
                    "poids_kg": 100 + i, "etat": "liquide", "conditionnement": "FUT", "nb_colis": 1,
                    "code_traitement": "R9", "cap": "CAP-2026-0042",
                    "updated_at": stamp + timedelta(seconds=i),
                    "td_id": f"BSDD-SENT-{i:05d}", "td_numero": f"BSD-20260302-{i:05d}",
                }
                for i in range(ROWS)
            ],
        )
    engine.dispose()
    return url


def _ingest_after_first_check(
    monkeypatch: pytest.MonkeyPatch, runtime: Runtime, *, later_checks: bool
) -> list[str | None]:
    """Push's first trust check, then the whole ingest, then push goes on. ``later_checks``
    False: the push's own re-checks see nothing (the claim's check alone must hold)."""
    seen: list[str | None] = []

    def check(pipeline: object) -> str | None:
        if seen and not later_checks:
            seen.append(None)
            return None
        reason = creates_refused(runtime.pipeline)
        if not seen:
            ingest(runtime.pipeline, threading.Event())
        seen.append(reason)
        return reason

    monkeypatch.setattr(push_module, "creates_refused", check)
    return seen


def _runtime_on(workdir: Path, url: str, erp_url: str, state_url: str) -> Runtime:
    """The ERP mapping with its state store on ``state_url`` (SQLite, PostgreSQL or MariaDB)."""
    (workdir / "mapping.toml").write_text(_mapping(erp_url), "utf-8")
    config = workdir / "config.toml"
    config.write_text(
        f'[trackdechets]\nurl = "{url}"\nrate_limit_per_minute = 100000\n'
        f'[state]\ndir = "{workdir}/var"\nurl = "{state_url}"\n'
        '[mappings]\npaths = ["mapping.toml"]\n[safety]\nmax_creations_per_run = 100000\n',
        "utf-8",
    )
    return build_runtime(load_settings(config, env={"TDC_TRACKDECHETS__TOKEN": DEMO_TOKEN}), workdir)


@pytest.mark.parametrize("dialect", dialect_params())
@pytest.mark.parametrize("later_checks", [True, False], ids=["recheck", "claim-only"])
def test_records_carrying_ids_stored_during_a_push_pass_are_never_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, later_checks: bool, dialect: str
) -> None:
    erp_url = _erp_carrying_ids(tmp_path / "erp.db")
    with (
        temporary_database(dialect) as state_url,
        serve_in_thread(EmulatorConfig(admin_enabled=True, rate_limit=100_000)) as served,
    ):
        runtime = _runtime_on(tmp_path, served.url, erp_url, state_url)
        try:
            seen = _ingest_after_first_check(monkeypatch, runtime, later_checks=later_checks)
            with pytest.raises(StateNotTrusted) as raised:
                push(runtime.pipeline, threading.Event())
            assert seen[0] is None  # the pass began on a store trusted as a new install
            assert "already carry a BSD id in their source" in str(raised.value)
            assert list(served.emulator.store.newest_first("BSDD")) == []  # not one duplicate
            identity = read_identity(runtime.pipeline.store)
            assert identity is not None
            assert identity.trusted is False
            with runtime.pipeline.store.session() as session:
                rows = list(session.scalars(sa.select(Record)))
            assert len(rows) == ROWS
            assert all(r.state == "pending" and r.intent_op is None for r in rows)
            assert not any(r.writeback_due for r in rows)  # the ERP's BSD ids stay as they are
        finally:
            runtime.close()


def test_an_ingest_marking_the_store_wins_over_a_new_install_check(tmp_path: Path) -> None:
    """The new-install check read "undecided", then ingest marked the store: trust is not granted."""
    erp_url = _erp_carrying_ids(tmp_path / "erp.db")
    with serve_in_thread(EmulatorConfig(admin_enabled=True, rate_limit=100_000)) as served:
        runtime = _runtime(tmp_path, served.url, erp_url)
        try:
            assert ensure_identity(runtime.pipeline.store).trusted is None
            ingest(runtime.pipeline, threading.Event())
            assert mark_trusted(runtime.pipeline.store, rebuilt=False).trusted is False
            assert "already carry a BSD id" in (creates_refused(runtime.pipeline) or "")
        finally:
            runtime.close()


def test_rebuild_adopts_by_the_bsd_id_the_source_holds_when_the_look_up_misses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look-up misses every record (older than ``--since``, or the mapping changed): those
    whose source holds a BSD id are adopted by reading it, or held; none is created again."""
    erp_url = _erp_carrying_ids(tmp_path / "erp.db")
    erp = sa.create_engine(erp_url, poolclass=sa.NullPool)
    with erp.begin() as conn:
        conn.execute(enlevements.update().values(td_id=None, td_numero=None))
    with serve_in_thread(EmulatorConfig(admin_enabled=True, rate_limit=100_000)) as served:
        runtime = _runtime(tmp_path, served.url, erp_url)
        try:
            assert all(s["ok"] for s in sync_once(runtime, threading.Event())["steps"])
        finally:
            runtime.close()
        with erp.connect() as conn:
            sent = dict(conn.execute(sa.select(enlevements.c.numero, enlevements.c.td_id)).all())
        assert all(sent.values())
        with erp.begin() as conn:  # one id the platform does not know (a typo in the ERP)
            conn.execute(enlevements.update().where(enlevements.c.numero == "ERP-00003")
                         .values(td_id="BSDD-DOES-NOT-EXIST"))
        for path in sorted((tmp_path / "var").rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()

        def miss(_pipeline: object, records: list[Record]) -> list[Verdict]:
            return [Verdict(r.id, None, applied=False) for r in records]

        monkeypatch.setattr(rebuild_module, "reconcile", miss)
        runtime = _runtime(tmp_path, served.url, erp_url)
        try:
            report = rebuild_state(runtime.pipeline, since=datetime.now(UTC), dry_run=False)
            assert report.to_create == []
            assert len(report.adopted) == ROWS - 1
            assert [(key, "BSDD-DOES-NOT-EXIST" in reason) for _m, key, reason in report.held] == [
                ("ERP-00003", True)
            ]
            assert all(s["ok"] for s in sync_once(runtime, threading.Event())["steps"])
            assert len(list(served.emulator.store.newest_first("BSDD"))) == ROWS  # no duplicate
            with runtime.pipeline.store.session() as session:
                held = session.scalars(sa.select(Record).where(Record.record_key == "ERP-00003")).one()
                assert held.state == "conflict"
                assert held.bsd_id is None
            with erp.connect() as conn:
                now = dict(conn.execute(sa.select(enlevements.c.numero, enlevements.c.td_id)).all())
            # The adopted records keep their ids. (ERP-00003's id is left to engine/writeback.py's
            # refresh, which must not write a held record's missing id over the source's.)
            assert {k: v for k, v in now.items() if k != "ERP-00003"} == {
                k: v for k, v in sent.items() if k != "ERP-00003"
            }
        finally:
            runtime.close()
            erp.dispose()
