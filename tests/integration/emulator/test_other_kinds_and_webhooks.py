"""BSVHU/BSDA/BSDASRI/BSFF/BSPAOH flows, webhooks and SQLite persistence, over real HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from td_emulator.config import EmulatorConfig, WebhookConfig
from td_emulator.testing import serve_in_thread

from .helpers import Api, company

VHU_TOKEN = "demo-token-vhu_emitter"  # the demo seed gives each demo company an ADMIN user
BSVHU = {
    "customId": "VHU-ERP-1",
    "emitter": {"company": company("vhu_emitter")},
    "wasteCode": "16 01 06",
    "packaging": "UNITE",
    "identification": {"numbers": ["AB-123"], "type": "NUMERO_ORDRE_REGISTRE_POLICE"},
    "quantity": 1,
    "weight": {"value": 1.2, "isEstimate": False},
    "destination": {"type": "BROYEUR", "plannedOperationCode": "R 4", "company": company("destination")},
    "transporter": {"company": company("transporter")},
}
BSDASRI = {
    "emitter": {
        "company": company("producer"),
        "emission": {
            "packagings": [{"type": "FUT", "volume": 10, "quantity": 1}],
            "weight": {"value": 5, "isEstimate": True},
        },
    },
    "waste": {"code": "18 01 03*", "adr": "UN 3291"},
    "destination": {"company": company("destination")},
    "transporter": {"company": company("transporter")},
}


def test_bsvhu_draft_publish_list_and_process(api: Api) -> None:
    api = Api(api.served, token=VHU_TOKEN)
    created = api.gql(
        "mutation($i: BsvhuInput!) { createDraftBsvhu(input: $i) { id status isDraft customId } }",
        {"i": BSVHU},
    )["data"]["createDraftBsvhu"]
    assert created["isDraft"] is True
    assert created["id"].startswith("VHU-")
    api.gql("mutation($id: ID!) { publishBsvhu(id: $id) { id } }", {"id": created["id"]})
    page = api.gql(
        '{ bsvhus(first: 10, where: {customId: {_eq: "VHU-ERP-1"}, isDraft: false}) { totalCount'
        " pageInfo { endCursor hasNextPage } edges { node { id status } } } }"
    )["data"]["bsvhus"]
    assert page["totalCount"] == 1
    assert page["pageInfo"] == {"endCursor": created["id"], "hasNextPage": False}
    # The other parties act through the admin API.
    for action, status in (
        ("sign-emission", "SIGNED_BY_PRODUCER"),
        ("sign-transport", "SENT"),
        ("receive", "RECEIVED"),
        ("process", "PROCESSED"),
    ):
        assert api.admin(created["id"], action).json()["status"] == status


def test_zod_issues_name_every_missing_field(api: Api) -> None:
    api = Api(api.served, token=VHU_TOKEN)
    error = api.gql(
        "mutation($i: BsvhuInput!) { createBsvhu(input: $i) { id } }",
        {"i": {"emitter": {"company": company("vhu_emitter")}, "wasteCode": "16 01 04"}},
    )["errors"][0]
    paths = {".".join(issue["path"]) for issue in error["extensions"]["issues"]}
    assert {"destination.company.siret", "weight.value", "packaging", "wasteCode"} <= paths


def test_bsdasri_published_then_refused(api: Api) -> None:
    created = api.gql(
        "mutation($i: BsdasriInput!) { createBsdasri(input: $i) { id status isDraft } }", {"i": BSDASRI}
    )
    bsd = created["data"]["createBsdasri"]
    assert bsd["status"] == "INITIAL"
    for action in ("sign-emission", "sign-transport"):
        assert api.admin(bsd["id"], action).status_code == 200
    assert api.admin(bsd["id"], "refuse").json()["status"] == "REFUSED"
    listed = api.gql(
        "query($s: String) { bsdasris(where: {emitter: {company: {siret: {_eq: $s}}}}) { totalCount"
        " edges { node { id status } } } }",
        {"s": company("producer")["siret"]},
    )
    assert listed["data"]["bsdasris"]["edges"][0]["node"] == {"id": bsd["id"], "status": "REFUSED"}


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, Any]]] = []
    status = 200

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append((self.headers["Authorization"], body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"received": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()
    server.server_close()


def test_webhook_payload_header_and_deactivation(api: Api, receiver: tuple[str, type[_Receiver]]) -> None:
    url, handler = receiver
    company_id = api.gql("{ myCompanies { edges { node { id } } } }")["data"]["myCompanies"]["edges"][0][
        "node"
    ]["id"]
    setting = api.gql(
        "mutation($i: WebhookSettingCreateInput!) { createWebhookSetting(input: $i) { id activated } }",
        {"i": {"companyId": company_id, "endpointUri": url, "token": "t" * 24, "activated": True}},
    )
    setting_id = setting["data"]["createWebhookSetting"]["id"]
    form = api.create_form()
    assert api.served.emulator.webhooks.wait_idle()
    assert handler.received == [(f"Bearer: {'t' * 24}", [{"action": "CREATED", "id": form["readableId"]}])]
    handler.status = 500
    for n in range(2):
        api.create_form(custom_id=f"FAIL-{n}")  # 2 events x 3 attempts = 6 failures
    assert api.served.emulator.webhooks.wait_idle()
    state = api.gql("query($id: ID!) { webhooksetting(id: $id) { activated } }", {"id": setting_id})
    assert state["data"]["webhooksetting"]["activated"] is False


def test_state_survives_a_restart_in_sqlite(tmp_path: Path) -> None:
    config = EmulatorConfig(sqlite_path=tmp_path / "emulator.db")
    with serve_in_thread(config) as served:
        form = Api(served).create_form(custom_id="PERSIST")
    with serve_in_thread(config) as served:
        found = Api(served).gql('{ forms(customId: "PERSIST") { id status } }')["data"]["forms"]
    assert found == [{"id": form["id"], "status": "DRAFT"}]


def test_webhooks_disabled_config_sends_nothing(receiver: tuple[str, type[_Receiver]]) -> None:
    with serve_in_thread(EmulatorConfig(webhooks=WebhookConfig(enabled=False))) as served:
        assert served.emulator.webhooks.wait_idle()
