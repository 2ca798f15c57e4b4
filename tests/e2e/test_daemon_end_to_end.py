"""A CSV folder and a SQLite table become sealed BSDDs; statuses up to PROCESSED come back.

The daemon runs as its own process (``python -m connector run``) against the emulator over HTTP;
the test plays the transporter and the treatment site through the emulator's admin API.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx

from connector.demo.run import EXPECTED, EXPECTED_REJECTED, STORY, _erp_rows, _prepare, _receipt_rows
from connector.domain.demo_companies import DEMO_TOKEN
from connector.state.store import open_state_store
from td_emulator.testing import ServedEmulator
from tests.e2e.process import FAST_SCHEDULE, start_daemon, wait_for


def _statuses(workdir: Path) -> dict[str, str]:
    seen = {row["key"]: row.get("remote_status") or row.get("status", "") for row in _receipt_rows(workdir)}
    seen.update({row["numero"]: row["td_statut"] or "" for row in _erp_rows(workdir)})
    return seen


def test_records_become_bsdds_and_statuses_up_to_processed_are_written_back(
    tmp_path: Path,
    emulator: ServedEmulator,
) -> None:
    config = _prepare(tmp_path, emulator.url)
    config.write_text(config.read_text("utf-8") + FAST_SCHEDULE, "utf-8")
    daemon = start_daemon(tmp_path, config)
    try:
        store_url = f"sqlite:///{tmp_path}/var/state.db"

        def synced() -> dict[str, str] | None:
            if not (tmp_path / "var" / "state.db").exists():
                return None
            store = open_state_store(store_url, migrate=False)
            try:
                rows = {r.record_key: r for r in store.records()}
            finally:
                store.close()
            ready = {k: r.readable_id for k, r in rows.items() if r.state == "synced" and r.readable_id}
            if (
                set(STORY) <= set(ready)
                and {k for k, r in rows.items() if r.state == "rejected"} >= EXPECTED_REJECTED
            ):
                return {k: v for k, v in ready.items() if v}
            return None

        readable = wait_for(synced, 40, "every valid record to be created and sealed", daemon)
        assert all(v.startswith("BSD-") for v in readable.values())
        with httpx.Client(base_url=emulator.url, timeout=10) as admin:
            for key, actions in STORY.items():
                for action in actions:
                    admin.post(
                        f"_emulator/bsds/{readable[key]}/{action}", json={"author": "Test"}
                    ).raise_for_status()

        def written_back() -> bool:
            seen = _statuses(tmp_path)
            return all(seen.get(k) == v for k, v in EXPECTED.items())

        wait_for(written_back, 40, f"statuses {EXPECTED} in the receipts and the ERP table", daemon)
        seen = _statuses(tmp_path)
        assert {k: seen[k] for k in EXPECTED_REJECTED} == dict.fromkeys(EXPECTED_REJECTED, "rejected")
    finally:
        code = daemon.stop()
    assert code == 0, daemon.log_path.read_text("utf-8")[-3000:]

    # One BSD per record, sealed once: nothing created twice.
    journal = list(emulator.emulator.journal)
    creates = [op for e in journal for op in e["operations"] if "createForm" in op["fields"]]
    seals = [op for e in journal for op in e["operations"] if "markAsSealed" in op["fields"]]
    assert len(set(readable.values())) == len(STORY)
    assert len(creates) == len(STORY)
    assert len(seals) == len(STORY)
    # Mutations travel five to a request: 7 creates + 7 seals need 4 requests, not 14.
    mutation_requests = [
        e
        for e in journal
        if any({"createForm", "markAsSealed"} & set(op["fields"]) for op in e["operations"])
    ]
    assert len(mutation_requests) <= 6

    # Rejections name the record, the field and the reason, where the business system sees them.
    with sqlite3.connect(tmp_path / "erp.db") as connection:
        (error,) = connection.execute(
            "SELECT td_erreur FROM enlevements WHERE numero = 'ENL-1004'"
        ).fetchone()
    assert "wasteDetails.quantity" in error

    # Logs: JSON lines naming mapping, record key and BSD id on state changes; the token nowhere.
    lines = daemon.log_lines()
    sealed = [e for e in lines if e.get("event") == "bsd_sealed"]
    assert sealed
    assert all({"mapping", "record_key", "bsd_id", "readable_id"} <= set(e) for e in sealed)
    for path in [
        daemon.log_path,
        *tmp_path.rglob("*.receipt.csv"),
        tmp_path / "var" / "state.db",
        tmp_path / "erp.db",
    ]:
        assert DEMO_TOKEN.encode() not in path.read_bytes(), f"token found in {path}"


def test_a_webhook_brings_a_status_back_long_before_the_next_walk(
    tmp_path: Path, emulator: ServedEmulator
) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    secret = "webhook-secret-for-the-e2e-test-0001"
    config = _prepare(tmp_path, emulator.url)
    slow_walks = FAST_SCHEDULE.replace("track_seconds = 0.7", "track_seconds = 600")
    config.write_text(
        config.read_text("utf-8") + slow_walks + f"\n[webhooks]\nenabled = true\nport = {port}\n", "utf-8"
    )
    daemon = start_daemon(tmp_path, config, extra_env={"TDC_WEBHOOKS__TOKEN": secret})
    try:
        with httpx.Client(
            base_url=emulator.url, timeout=10, headers={"Authorization": f"Bearer {DEMO_TOKEN}"}
        ) as api:
            companies = api.post("", json={"query": "{ myCompanies { edges { node { id siret } } } }"}).json()
            company_id = companies["data"]["myCompanies"]["edges"][0]["node"]["id"]
            created = api.post(
                "",
                json={
                    "query": "mutation($i: WebhookSettingCreateInput!) "
                    "{ createWebhookSetting(input: $i) { id } }",
                    "variables": {
                        "i": {
                            "companyId": company_id,
                            "activated": True,
                            "token": secret,
                            "endpointUri": f"http://127.0.0.1:{port}/webhooks/trackdechets",
                        }
                    },
                },
            ).json()
            assert created["data"]["createWebhookSetting"]["id"]

        def sealed() -> str | None:
            rows = {r["numero"]: r for r in _erp_rows(tmp_path)}
            row = rows.get("ENL-1001") or {}
            return row.get("td_numero") if row.get("td_statut") == "SEALED" else None

        readable = wait_for(sealed, 40, "ENL-1001 sealed and written back", daemon)
        httpx.post(f"{emulator.url}_emulator/bsds/{readable}/sign-emission", json={}).raise_for_status()

        def signed() -> bool:
            return {r["numero"]: r for r in _erp_rows(tmp_path)}["ENL-1001"][
                "td_statut"
            ] == "SIGNED_BY_PRODUCER"

        wait_for(signed, 15, "the signature written back through the webhook path", daemon)
    finally:
        assert daemon.stop() == 0
    assert any(e.get("event") == "webhook_received" for e in daemon.log_lines())
    assert secret.encode() not in daemon.log_path.read_bytes()


def test_sighup_applies_a_valid_configuration_and_keeps_running_on_an_invalid_one(
    tmp_path: Path, emulator: ServedEmulator
) -> None:
    import signal

    config = _prepare(tmp_path, emulator.url)
    config.write_text(config.read_text("utf-8") + FAST_SCHEDULE, "utf-8")
    (tmp_path / "mappings" / "bsdd_sqlite.toml").rename(tmp_path / "bsdd_sqlite.toml.off")
    daemon = start_daemon(tmp_path, config)
    try:
        wait_for(lambda: any(r.get("status") for r in _receipt_rows(tmp_path)), 30, "the CSV synced", daemon)
        assert all(r["td_statut"] is None for r in _erp_rows(tmp_path))  # that mapping is not loaded

        # A mapping with an unknown field: the reload is refused, the running configuration stays.
        broken = tmp_path / "mappings" / "broken.toml"
        broken.write_text(
            (tmp_path / "bsdd_sqlite.toml.off")
            .read_text("utf-8")
            .replace('"wasteDetails.name"', '"wasteDetails.nom"'),
            "utf-8",
        )
        daemon.process.send_signal(signal.SIGHUP)
        wait_for(
            lambda: any(e.get("event") == "reload_rejected" for e in daemon.log_lines()),
            20,
            "the invalid reload refused",
            daemon,
        )
        assert daemon.process.poll() is None

        # The fixed mapping: the reload is applied and the ERP table is synced too.
        broken.unlink()
        (tmp_path / "bsdd_sqlite.toml.off").rename(tmp_path / "mappings" / "bsdd_sqlite.toml")
        daemon.process.send_signal(signal.SIGHUP)
        wait_for(
            lambda: any(e.get("event") == "reloaded" for e in daemon.log_lines()),
            20,
            "the valid reload applied",
            daemon,
        )
        wait_for(
            lambda: {r["numero"]: r["td_statut"] for r in _erp_rows(tmp_path)}.get("ENL-1001") == "SEALED",
            30,
            "the ERP rows synced after the reload",
            daemon,
        )
    finally:
        assert daemon.stop() == 0
    rejected = [e for e in daemon.log_lines() if e.get("event") == "reload_rejected"]
    assert "wasteDetails.nom" in json.dumps(rejected)
