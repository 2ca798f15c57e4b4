"""Webhooks from the emulator reach the receiver; the track step reads the announced BSDs back."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from connector.domain.demo_companies import DEMO_TOKEN
from connector.service import run_step, sync_once
from connector.state.store import utcnow
from connector.webhooks import WebhookReceiver, parse_authorization
from td_emulator.config import EmulatorConfig
from td_emulator.testing import serve_in_thread
from tests.integration.engine.support import csv_text, drop, runtime_for

SECRET = "a-webhook-secret-of-32-characters!"


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer: abc", "abc"),
        ("Bearer abc", "abc"),
        ("bearer:  abc ", "abc"),
        ("Basic abc", None),
        (None, None),
    ],
)
def test_both_spellings_of_the_authorization_header(header: str | None, token: str | None) -> None:
    assert parse_authorization(header) == token


def test_a_webhook_makes_the_next_track_run_read_the_bsd_back(tmp_path: Path) -> None:
    with serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        runtime = runtime_for(tmp_path, served.url)
        woken = threading.Event()
        receiver = WebhookReceiver(
            lambda: runtime.store,
            host="127.0.0.1",
            port=0,
            path="/webhooks/trackdechets",
            token=SECRET,
            on_hint=woken.set,
        ).start()
        try:
            client = runtime.client
            assert client is not None
            companies = client.query("query { myCompanies(first: 10) { edges { node { id siret } } } }")
            company_id = companies["myCompanies"]["edges"][0]["node"]["id"]
            # The setting is made once per company, by an ADMIN, outside the connector.
            setting = httpx.post(
                served.url,
                headers={"Authorization": f"Bearer {DEMO_TOKEN}"},
                json={
                    "query": "mutation($i: WebhookSettingCreateInput!) "
                    "{ createWebhookSetting(input: $i) { id } }",
                    "variables": {
                        "i": {
                            "companyId": company_id,
                            "endpointUri": receiver.url,
                            "token": SECRET,
                            "activated": True,
                        }
                    },
                },
            ).json()
            assert setting["data"]["createWebhookSetting"]["id"]

            drop(tmp_path, "a.csv", csv_text())
            sync_once(runtime, threading.Event())
            record = next(r for r in runtime.store.records() if r.record_key == "BE-2026-0412")
            # Walks from now on see nothing: only the webhook can tell the track step.
            with runtime.store.session() as session:
                for siret in ["85243162000123", *(runtime.pipeline.my_sirets or [])]:
                    runtime.store.put_cursor(session, "BSDD", siret, utcnow() + timedelta(days=1))
            served.emulator.webhooks.wait_idle()
            woken.clear()
            httpx.post(
                f"{served.url}_emulator/bsds/{record.readable_id}/sign-emission", json={}
            ).raise_for_status()
            assert served.emulator.webhooks.wait_idle()
            assert woken.wait(5), "the receiver never heard of the signature"
            counts = run_step(runtime.pipeline, "track", threading.Event())
            assert counts["hints_read"] >= 1
            record = next(r for r in runtime.store.records() if r.record_key == "BE-2026-0412")
            assert record.remote_status == "SIGNED_BY_PRODUCER"
            assert (
                run_step(runtime.pipeline, "track", threading.Event()).get("hints", 0) == 0
            )  # hints are used once
        finally:
            receiver.stop()
            runtime.close()


def test_the_receiver_refuses_a_wrong_token_and_a_bad_body(tmp_path: Path) -> None:
    with serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        runtime = runtime_for(tmp_path, served.url)
        receiver = WebhookReceiver(
            lambda: runtime.store, host="127.0.0.1", port=0, path="/webhooks/trackdechets", token=SECRET
        ).start()
        try:
            ok = httpx.post(
                receiver.url,
                headers={"Authorization": f"Bearer: {SECRET}"},
                json=[{"action": "UPDATED", "id": "BSD-20261128-AAAAAAAAA"}],
            )
            assert ok.status_code == 200
            assert (
                httpx.post(receiver.url, headers={"Authorization": "Bearer: nope"}, json=[]).status_code
                == 401
            )
            assert httpx.post(receiver.url, json=[]).status_code == 401
            bad = httpx.post(
                receiver.url, headers={"Authorization": f"Bearer {SECRET}"}, content=b"{not json"
            )
            assert bad.status_code == 400
            # A hint for a BSD that is not ours is read by nobody and forgotten.
            assert run_step(runtime.pipeline, "track", threading.Event())["hints"] == 1
        finally:
            receiver.stop()
            runtime.close()
