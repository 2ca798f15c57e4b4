"""BSDD over real HTTP: auth, checks, the full life to PROCESSED, lists and lifecycle logs."""

from __future__ import annotations

from connector.domain.demo_companies import OTHER_TOKEN

from .helpers import CREATE_FORM, Api, form_input

SEAL = "mutation S($id: ID!) { markAsSealed(id: $id) { id status updatedAt } }"


def test_missing_or_unknown_token_is_unauthenticated(api: Api) -> None:
    for token in (None, "nope"):
        anonymous = Api(api.served, token=token)
        body = anonymous.gql("{ me { id } }")
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        anonymous.http.close()


def test_outsider_is_forbidden_on_a_form(api: Api) -> None:
    form = api.create_form()
    api.gql(SEAL, {"id": form["id"]})
    outsider = Api(api.served, token=OTHER_TOKEN)
    body = outsider.gql("query($id: ID) { form(id: $id) { id } }", {"id": form["id"]})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    outsider.http.close()


def test_full_life_to_processed_through_the_admin_api(api: Api) -> None:
    form = api.create_form(custom_id="ERP-42")
    assert form["status"] == "DRAFT"
    assert form["readableId"].startswith("BSD-")
    sealed = api.gql(SEAL, {"id": form["id"]})["data"]["markAsSealed"]
    assert sealed["status"] == "SEALED"
    previous = sealed["updatedAt"]
    for action, status in (
        ("sign-emission", "SIGNED_BY_PRODUCER"),
        ("sign-transport", "SENT"),
        ("receive", "ACCEPTED"),
        ("process", "PROCESSED"),
    ):
        answer = api.admin(form["id"], action)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == status
        assert answer.json()["updatedAt"] > previous
        previous = answer.json()["updatedAt"]
    found = api.gql('{ forms(customId: "ERP-42") { id status processingOperationDone } }')["data"]["forms"]
    assert found == [{"id": form["id"], "status": "PROCESSED", "processingOperationDone": "D 10"}]
    logs = api.gql("{ formsLifeCycle { count statusLogs { status form { id } } } }")["data"]["formsLifeCycle"]
    assert [log["status"] for log in logs["statusLogs"]] == [
        "PROCESSED",
        "ACCEPTED",
        "SENT",
        "SIGNED_BY_PRODUCER",
        "SEALED",
        "DRAFT",
    ]


def test_refusal_by_the_destination(api: Api) -> None:
    form = api.create_form()
    api.gql(SEAL, {"id": form["id"]})
    for action in ("sign-emission", "sign-transport"):
        assert api.admin(form["id"], action).status_code == 200
    assert api.admin(form["id"], "refuse", reason="Non conforme").json()["status"] == "REFUSED"


def test_wrong_transition_is_refused_like_the_platform(api: Api) -> None:
    form = api.create_form()
    body = api.gql(
        'mutation($id: ID!) { signTransportForm(id: $id, input: {takenOverAt: "2026-01-01T10:00:00Z",'
        ' takenOverBy: "X"}) { id } }',
        {"id": form["id"]},
    )
    assert body["errors"][0]["message"] == "Vous ne pouvez pas passer ce bordereau à l'état souhaité."
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_seal_names_every_missing_field(api: Api) -> None:
    data = form_input()
    del data["recipient"]["processingOperation"]
    data["wasteDetails"] = {"code": "06 05 02*"}
    created = api.gql(CREATE_FORM, {"i": data})["data"]["createForm"]
    error = api.gql(SEAL, {"id": created["id"]})["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].startswith("Erreur, impossible de valider le bordereau")
    for path in (
        "recipient.processingOperation",
        "wasteDetails.name",
        "wasteDetails.quantity",
        "wasteDetails.packagingInfos",
        "wasteDetails.isSubjectToADR",
        "wasteDetails.pop",
    ):
        assert path in error["extensions"]["invalidArgs"], path


def test_invalid_siret_waste_code_and_unregistered_destination(api: Api) -> None:
    data = form_input()
    data["transporter"]["company"]["siret"] = "51830934000141"  # Luhn fails
    data["recipient"]["company"]["siret"] = "73282932000074"  # valid but not registered
    data["wasteDetails"]["code"] = "99 99 99"
    error = api.gql(CREATE_FORM, {"i": data})["errors"][0]
    assert "transporter.company.siret" in error["message"]
    assert "n'est pas inscrit" in error["message"]
    assert "99 99 99" in error["message"]
    assert error["extensions"]["invalidArgs"] == [
        "transporter.company.siret",
        "recipient.company.siret",
        "transporter.company.siret",
        "wasteDetails.code",
    ]


def test_bad_datetime_is_a_400_naming_the_field(api: Api) -> None:
    form = api.create_form()
    api.gql(SEAL, {"id": form["id"]})
    response = api.post(
        "mutation($id: ID!, $i: SignEmissionFormInput!) { signEmissionForm(id: $id, input: $i) { id } }",
        {"id": form["id"], "i": {"quantity": 1, "emittedAt": "yesterday", "emittedBy": "Me"}},
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "emittedAt" in error["message"]


def test_forms_newest_first_with_cursor_pagination(api: Api) -> None:
    ids = [api.create_form(custom_id=f"P-{n}")["id"] for n in range(5)]
    query = "query($after: ID) { forms(first: 2, cursorAfter: $after) { id } }"
    seen: list[str] = []
    after = None
    while True:
        page = api.gql(query, {"after": after})["data"]["forms"]
        seen += [f["id"] for f in page]
        if len(page) < 2:
            break
        after = page[-1]["id"]
    assert seen == list(reversed(ids))
    too_many = api.gql("{ forms(first: 101) { id } }")["errors"][0]
    assert too_many["extensions"]["code"] == "BAD_USER_INPUT"


def test_aliased_mutations_run_serially_and_null_everything_on_failure(api: Api) -> None:
    ok = form_input(custom_id="ALIAS-1")
    bad = form_input(custom_id="ALIAS-2")
    bad["wasteDetails"]["code"] = "nope"
    third = form_input(custom_id="ALIAS-3")
    body = api.gql(
        "mutation($a: CreateFormInput!, $b: CreateFormInput!, $c: CreateFormInput!) {"
        " a: createForm(createFormInput: $a) { id } b: createForm(createFormInput: $b) { id }"
        " c: createForm(createFormInput: $c) { id } }",
        {"a": ok, "b": bad, "c": third},
    )
    assert body["data"] is None
    assert body["errors"][0]["path"] == ["b"]
    stored = {f["customId"] for f in api.served.emulator.store.newest_first("BSDD")}
    assert stored == {"ALIAS-1"}  # the first one is committed, its id lost; the third never ran


def test_update_then_delete_and_duplicate(api: Api) -> None:
    form = api.create_form()
    updated = api.gql(
        "mutation($i: UpdateFormInput!) { updateForm(updateFormInput: $i) { customId wasteDetails"
        " { name quantity } } }",
        {"i": {"id": form["id"], "customId": "NEW", "wasteDetails": {"name": "Boues 2"}}},
    )
    assert updated["data"]["updateForm"] == {
        "customId": "NEW",
        "wasteDetails": {"name": "Boues 2", "quantity": 1.5},
    }
    copy = api.gql("mutation($id: ID!) { duplicateForm(id: $id) { id status customId } }", {"id": form["id"]})
    assert copy["data"]["duplicateForm"]["status"] == "DRAFT"
    assert copy["data"]["duplicateForm"]["customId"] is None
    api.gql("mutation($id: ID!) { deleteForm(id: $id) { id } }", {"id": form["id"]})
    gone = api.gql("query($id: ID) { form(id: $id) { id } }", {"id": form["id"]})
    assert gone["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
