"""The BSDD lifecycle the connector follows: each step a status, a later ``updatedAt``, a status log."""

from __future__ import annotations

from typing import Any

from .target import FORM_FIELDS, Target, new_tag

_SEAL = f"mutation S($id: ID!) {{ markAsSealed(id: $id) {{ {FORM_FIELDS} }} }}"
_READ = f"query F($id: ID!) {{ form(id: $id) {{ {FORM_FIELDS} }} }}"
_LOGS = """query L($siret: String, $formId: ID) { formsLifeCycle(siret: $siret, formId: $formId) {
  statusLogs { status loggedAt form { id } } } }"""


def _read(target: Target, form_id: str) -> dict[str, Any]:
    body = target.gql(_READ, {"id": form_id})
    assert "errors" not in body, body
    form: dict[str, Any] = body["data"]["form"]
    return form


def test_create_then_seal_then_a_repeated_seal_is_an_invalid_transition(target: Target) -> None:
    form = target.create_form(new_tag())
    assert form["status"] == "DRAFT"
    sealed = target.gql(_SEAL, {"id": form["id"]})
    assert "errors" not in sealed, sealed
    assert sealed["data"]["markAsSealed"]["status"] == "SEALED"
    assert sealed["data"]["markAsSealed"]["updatedAt"] >= form["updatedAt"]
    again = target.gql(_SEAL, {"id": form["id"]})
    assert again["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert _read(target, form["id"])["status"] == "SEALED"


def test_the_other_parties_steps_up_to_processed_each_bump_updated_at_and_log_a_status(
    target: Target,
) -> None:
    target.require_emulator("the transporter and the destination sign")
    tag = new_tag()
    form = target.create_form(tag)
    target.gql(_SEAL, {"id": form["id"]})
    seen = [("SEALED", _read(target, form["id"])["updatedAt"])]
    for action, status in (("sign-emission", "SIGNED_BY_PRODUCER"), ("sign-transport", "SENT"),
                           ("receive", "ACCEPTED"), ("process", "PROCESSED")):
        target.admin(form["id"], action, author="Conformité")
        current = _read(target, form["id"])
        assert current["status"] == status, action
        assert current["updatedAt"] >= seen[-1][1], action
        seen.append((status, current["updatedAt"]))
        # The tracking walk finds it from its last updatedAt.
        found = target.forms(customId=tag, updatedAfter=current["updatedAt"])
        assert [f["status"] for f in found] == [status]
    logs = target.gql(_LOGS, {"siret": target.producer.siret if target.producer else None,
                              "formId": form["id"]})["data"]["formsLifeCycle"]["statusLogs"]
    statuses = {log["status"] for log in logs}
    assert {"SEALED", "SIGNED_BY_PRODUCER", "SENT", "ACCEPTED", "PROCESSED"} <= statuses
    target.created.remove(form["id"])  # processed: no longer deletable
