"""Error codes and HTTP statuses the connector classifies its failures by."""

from __future__ import annotations

from typing import Any

import pytest

from .target import CREATE_FORM, Target, new_tag

ME = "query Me { me { email } }"


def _code(body: dict[str, Any]) -> str:
    code: str = body["errors"][0]["extensions"]["code"]
    return code


def test_no_token_and_a_wrong_token_are_unauthenticated_with_http_200(target: Target) -> None:
    for token in (None, "not-a-token-of-anyone"):
        body = target.gql(ME, token=token)
        assert _code(body) == "UNAUTHENTICATED"
        assert body.get("data") is None


def test_another_companys_bsd_is_forbidden(target: Target) -> None:
    if target.other_token is None:
        pytest.skip("needs --other-token-env: a token of a user outside the BSD's companies")
    form = target.create_form(new_tag())
    query = "query F($id: ID!) { form(id: $id) { id } }"
    body = target.gql(query, {"id": form["id"]}, token=target.other_token)
    assert _code(body) == "FORBIDDEN"


def test_an_unknown_bsd_is_bad_user_input_with_http_200(target: Target) -> None:
    body = target.gql("query F($id: ID!) { form(id: $id) { id } }", {"id": "conformance-no-such-form"})
    assert _code(body) == "BAD_USER_INPUT"


def test_an_invalid_payload_is_bad_user_input_naming_the_field(target: Target) -> None:
    data = target.form_input(new_tag())
    data["transporter"]["company"]["siret"] = "85243162000124"  # Luhn fails
    body = target.gql(CREATE_FORM, {"i": data})
    assert _code(body) == "BAD_USER_INPUT"
    assert "siret" in body["errors"][0]["message"].lower()
    assert body.get("data") is None


def test_variables_that_do_not_coerce_are_refused_with_http_400(target: Target) -> None:
    data = target.form_input(new_tag())
    data["emitter"]["type"] = "NOT_AN_EMITTER_TYPE"
    body = target.gql(CREATE_FORM, {"i": data}, status=400)
    assert _code(body) == "BAD_USER_INPUT"


def test_a_field_the_schema_does_not_have_fails_validation_with_http_400(target: Target) -> None:
    body = target.gql("query { me { email noSuchField } }", status=400)
    assert _code(body) == "GRAPHQL_VALIDATION_FAILED"


def test_a_syntax_error_fails_parsing_with_http_400(target: Target) -> None:
    body = target.gql("query { me { email }", status=400)
    assert _code(body) == "GRAPHQL_PARSE_FAILED"
