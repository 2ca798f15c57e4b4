"""An ERP table of 1,000 pickups on SQLite, PostgreSQL and MariaDB, synced; then the whole state
folder is lost. The rows' own write-back columns reveal it: no create until ``rebuild-state``,
which adopts every BSD; not one duplicate, and the ERP's BSD ids are never overwritten."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from connector.domain.demo_companies import DEMO_TOKEN
from connector.engine.rebuild import rebuild_state
from connector.runtime import Runtime, build_runtime
from connector.service import sync_once
from connector.settings import load_settings
from td_emulator.config import EmulatorConfig
from td_emulator.testing import serve_in_thread
from tests.db_urls import dialect_params, temporary_database

ROWS = 1000
DEMO = Path(__file__).resolve().parents[3] / "connector" / "demo"

metadata = sa.MetaData()
enlevements = sa.Table(
    "enlevements", metadata,
    sa.Column("numero", sa.String(30), primary_key=True),
    sa.Column("code_dechet", sa.String(20)),
    sa.Column("libelle", sa.String(100)),
    sa.Column("poids_kg", sa.Numeric(10, 2)),
    sa.Column("etat", sa.String(20)),
    sa.Column("conditionnement", sa.String(20)),
    sa.Column("nb_colis", sa.Integer),
    sa.Column("code_traitement", sa.String(10)),
    sa.Column("cap", sa.String(30)),
    sa.Column("updated_at", sa.DateTime),
    sa.Column("td_id", sa.String(50)),
    sa.Column("td_numero", sa.String(50)),
    sa.Column("td_statut", sa.String(40)),
    sa.Column("td_erreur", sa.Text),
    sa.Index("ix_enlevements_updated_at", "updated_at", "numero"),
)


def _mapping(url: str) -> str:
    text = (DEMO / "bsdd_sqlite.toml").read_text("utf-8")
    text = text.replace('"customId" = "numero"\n', "")  # the record key becomes the customId
    return text.replace('url = "sqlite:///{workdir}/erp.db"', f'url = "{url}"')


def _runtime(workdir: Path, url: str, erp_url: str) -> Runtime:
    (workdir / "mapping.toml").write_text(_mapping(erp_url), "utf-8")
    config = workdir / "config.toml"
    config.write_text(
        f'[trackdechets]\nurl = "{url}"\nrate_limit_per_minute = 100000\n[state]\ndir = "{workdir}/var"\n'
        '[mappings]\npaths = ["mapping.toml"]\n[safety]\nmax_creations_per_run = 100000\n',
        "utf-8",
    )
    settings = load_settings(config, env={"TDC_TRACKDECHETS__TOKEN": DEMO_TOKEN})
    return build_runtime(settings, workdir)


def _fill(engine: sa.Engine) -> None:
    metadata.create_all(engine)
    stamp = datetime(2026, 3, 2, 8, 0, 0)
    rows = [
        {
            "numero": f"ERP-{i:05d}", "code_dechet": "130205*", "libelle": "Huiles moteur usagées",
            "poids_kg": 100 + i, "etat": "liquide", "conditionnement": "FUT", "nb_colis": 1 + i % 4,
            "code_traitement": "R9", "cap": "CAP-2026-0042", "updated_at": stamp + timedelta(seconds=i),
        }
        for i in range(ROWS)
    ]
    with engine.begin() as conn:
        conn.execute(enlevements.insert(), rows)


def _erp_ids(engine: sa.Engine) -> dict[str, str | None]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(enlevements.c.numero, enlevements.c.td_id)).all())  # type: ignore[arg-type]


def _steps(runtime: Runtime) -> dict[str, dict[str, object]]:
    return {s["step"]: s for s in sync_once(runtime, threading.Event())["steps"]}


@pytest.mark.slow
@pytest.mark.parametrize("dialect", dialect_params())
def test_a_lost_state_folder_never_duplicates_a_thousand_erp_pickups(dialect: str, tmp_path: Path) -> None:
    config = EmulatorConfig(admin_enabled=True, rate_limit=100_000)
    with temporary_database(dialect) as erp_url, serve_in_thread(config) as served:
        erp = sa.create_engine(erp_url, poolclass=sa.NullPool)
        _fill(erp)
        runtime = _runtime(tmp_path, served.url, erp_url)
        try:
            assert _steps(runtime)["push"]["ok"] is True
        finally:
            runtime.close()
        sent = _erp_ids(erp)
        assert all(sent.values())
        assert len(list(served.emulator.store.newest_first("BSDD"))) == ROWS

        # The whole state folder is lost (disk replaced, `rm -rf var`): no marker survives.
        for path in sorted((tmp_path / "var").rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        runtime = _runtime(tmp_path, served.url, erp_url)
        try:
            steps = _steps(runtime)
            assert steps["push"]["ok"] is False
            assert "already carry a BSD id in their source" in str(steps["push"]["error"])
            assert len(list(served.emulator.store.newest_first("BSDD"))) == ROWS  # nothing created
            assert _erp_ids(erp) == sent  # and the ERP's BSD ids are untouched

            since = datetime.now(UTC) - timedelta(days=1)
            report = rebuild_state(runtime.pipeline, since=since, dry_run=False)
            assert report.trusted
            assert len(report.adopted) == ROWS
            assert report.to_create == []
            assert _steps(runtime)["push"]["ok"] is True
        finally:
            runtime.close()
        forms = list(served.emulator.store.newest_first("BSDD"))
        assert Counter(Counter(f["customId"] for f in forms).values()) == Counter({1: ROWS})
        assert _erp_ids(erp) == sent
        erp.dispose()
