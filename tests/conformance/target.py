"""The API under test: the in-process emulator by default, or any URL + token (``--target``).

A ``Target`` sends raw HTTP (the connector's own client is not under test here: the suite states
what the platform does, so that the emulator and the sandbox can both be held to it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

__all__ = ["CREATE_FORM", "FORM_FIELDS", "Company", "Target", "deep_query", "new_tag"]

FORM_FIELDS = "id readableId customId status createdAt updatedAt"
CREATE_FORM = f"mutation C($i: CreateFormInput!) {{ createForm(createFormInput: $i) {{ {FORM_FIELDS} }} }}"
_DEFAULT = object()


def new_tag() -> str:
    """A per-test prefix for customIds, so tests sharing one account never see each other's BSDs."""
    return f"CONF-{uuid.uuid4().hex[:10]}"


def deep_query(depth: int) -> str:
    """A valid query ``depth`` levels deep (BSFF packagings -> next BSFF -> packagings ...)."""
    fields = ['bsff(id: "conformance-missing")'] + [
        "packagings" if level % 2 else "nextBsff" for level in range(1, depth)
    ]
    text = "volume" if fields[-1] == "packagings" else "id"
    for name in reversed(fields):
        text = f"{name} {{ {text} }}"
    return f"query Deep {{ {text} }}"


@dataclass(frozen=True)
class Company:
    siret: str
    name: str = "Établissement de test de conformité"
    address: str = "1 rue du Test, 75001 Paris"
    contact: str = "Test Conformité"
    phone: str = "01 00 00 00 00"
    mail: str = "conformite@example.org"

    def as_input(self) -> dict[str, str]:
        return {"siret": self.siret, "name": self.name, "address": self.address, "contact": self.contact,
                "phone": self.phone, "mail": self.mail}


@dataclass
class Target:
    url: str
    token: str
    other_token: str | None = None
    """A token of a user of an unrelated company (FORBIDDEN checks); None skips them."""
    producer: Company | None = None
    destination: Company | None = None
    transporter: Company | None = None
    emulator: Any = None
    """The in-process ``td_emulator.Emulator`` when the target is the emulator, else None."""
    created: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=60)

    @property
    def is_emulator(self) -> bool:
        return self.emulator is not None

    def require_emulator(self, why: str) -> None:
        if not self.is_emulator:
            pytest.skip(f"emulator only: {why} (the target is {self.url})")

    def require_companies(self) -> tuple[Company, Company, Company]:
        if self.producer is None or self.destination is None or self.transporter is None:
            pytest.skip("creating BSDDs needs --producer-siret, --destination-siret and --transporter-siret")
        return self.producer, self.destination, self.transporter

    # --- HTTP ---------------------------------------------------------------------------------------

    def post(self, body: Any, token: Any = _DEFAULT) -> httpx.Response:
        token = self.token if token is _DEFAULT else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.post("", json=body, headers=headers)

    def gql(self, query: str, variables: dict[str, Any] | None = None, token: Any = _DEFAULT,
            status: int = 200) -> dict[str, Any]:
        response = self.post({"query": query, "variables": variables or {}}, token)
        assert response.status_code == status, response.text
        return response.json()  # type: ignore[no-any-return]

    def admin(self, form_id: str, action: str, **body: Any) -> dict[str, Any]:
        """Play another party on the emulator (transporter, destination): ``/_emulator/bsds/...``."""
        self.require_emulator(f"acting as another party: {action}")
        response = self.http.post(f"_emulator/bsds/{form_id}/{action}", json=body)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    # --- BSDDs --------------------------------------------------------------------------------------

    def form_input(self, custom_id: str, **overrides: Any) -> dict[str, Any]:
        producer, destination, transporter = self.require_companies()
        data: dict[str, Any] = {
            "customId": custom_id,
            "emitter": {"type": "PRODUCER", "company": producer.as_input()},
            "recipient": {"processingOperation": "D 10", "cap": "CAP-CONFORMITE",
                          "company": destination.as_input()},
            "transporter": {"company": transporter.as_input()},
            "wasteDetails": {"code": "06 05 02*", "name": "Boues de test", "isSubjectToADR": False,
                             "packagingInfos": [{"type": "FUT", "quantity": 1}], "quantity": 0.5,
                             "quantityType": "ESTIMATED", "consistences": ["LIQUID"], "pop": False},
        }
        data.update(overrides)
        return data

    def create_form(self, custom_id: str, **overrides: Any) -> dict[str, Any]:
        body = self.gql(CREATE_FORM, {"i": self.form_input(custom_id, **overrides)})
        assert "errors" not in body, body
        form: dict[str, Any] = body["data"]["createForm"]
        self.created.append(form["id"])
        return form

    def forms(self, **arguments: Any) -> list[dict[str, Any]]:
        producer, _, _ = self.require_companies()
        arguments.setdefault("siret", producer.siret)
        declared = {"siret": "String", "customId": "String", "updatedAfter": "String", "first": "Int",
                    "cursorAfter": "ID"}
        variables = ", ".join(f"${name}: {declared[name]}" for name in arguments)
        passed = ", ".join(f"{name}: ${name}" for name in arguments)
        body = self.gql(f"query F({variables}) {{ forms({passed}) {{ {FORM_FIELDS} }} }}", arguments)
        assert "errors" not in body, body
        return body["data"]["forms"]  # type: ignore[no-any-return]

    def all_forms(self, page: int = 100, **arguments: Any) -> Iterator[dict[str, Any]]:
        """Walk ``forms`` page by page (``cursorAfter`` = last id) until a short page."""
        cursor = None
        while True:
            extra = {"cursorAfter": cursor} if cursor else {}
            items = self.forms(first=page, **arguments, **extra)
            yield from items
            if len(items) < page:
                return
            cursor = items[-1]["id"]

    def cleanup(self) -> None:
        """Delete what the suite created where the platform allows it (drafts and sealed forms)."""
        for form_id in self.created:
            self.post({"query": "mutation D($id: ID!) { deleteForm(id: $id) { id } }",
                       "variables": {"id": form_id}})
        self.http.close()
