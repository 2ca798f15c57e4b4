"""Helpers of the emulator tests: sealable payloads and a tiny GraphQL client over real HTTP."""

from __future__ import annotations

from typing import Any

import httpx

from connector.domain.demo_companies import DEMO_COMPANIES, DEMO_TOKEN
from td_emulator.testing import ServedEmulator

CREATE_FORM = """mutation C($i: CreateFormInput!) { createForm(createFormInput: $i) {
  id readableId customId status createdAt updatedAt emitter { type company { siret name } }
  recipient { company { siret } processingOperation } wasteDetails { code name quantity } } }"""


def company(key: str) -> dict[str, str]:
    demo = DEMO_COMPANIES[key]
    return {"siret": demo.siret, "name": demo.name, "address": demo.address, "contact": demo.contact,
            "phone": demo.phone, "mail": demo.mail}


def form_input(custom_id: str = "ERP-1", **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "customId": custom_id,
        "emitter": {"type": "PRODUCER", "company": company("producer")},
        "recipient": {"processingOperation": "D 10", "cap": "CAP-1", "company": company("destination")},
        "transporter": {"company": company("transporter")},
        "wasteDetails": {"code": "06 05 02*", "name": "Boues", "isSubjectToADR": False,
                         "packagingInfos": [{"type": "CITERNE", "quantity": 1}], "quantity": 1.5,
                         "quantityType": "ESTIMATED", "consistences": ["LIQUID"], "pop": False},
    }
    data.update(overrides)
    return data


class Api:
    """A tiny GraphQL client over real HTTP (the project's own client is tested elsewhere)."""

    def __init__(self, served: ServedEmulator, token: str | None = DEMO_TOKEN) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=served.url, headers=headers, timeout=10)
        self.served = served

    def post(self, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.post("", json={"query": query, "variables": variables or {}})

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.post(query, variables)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def admin(self, key: str, action: str, **body: Any) -> httpx.Response:
        return self.http.post(f"_emulator/bsds/{key}/{action}", json=body)

    def create_form(self, **kwargs: Any) -> dict[str, Any]:
        body = self.gql(CREATE_FORM, {"i": form_input(**kwargs)})
        assert "errors" not in body, body
        return body["data"]["createForm"]  # type: ignore[no-any-return]


