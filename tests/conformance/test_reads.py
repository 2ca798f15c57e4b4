"""How the connector finds BSDs again: ``forms`` order and cursors, ``updatedAfter``, ``customId``,
and the pages of ``myCompanies``."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .target import FORM_FIELDS, Target, new_tag

_UPDATE = f"""mutation U($i: UpdateFormInput!) {{ updateForm(updateFormInput: $i) {{ {FORM_FIELDS} }} }}"""


def _mine(forms: list[dict[str, Any]], tag: str) -> list[str]:
    return [f["customId"] for f in forms if (f.get("customId") or "").startswith(tag)]


def _later(stamp: str) -> None:
    """Wait until the clock is past ``stamp`` (ISO), so the next change gets a later updatedAt."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    while datetime.now(UTC) <= moment:
        time.sleep(0.005)


def test_forms_come_newest_created_first_even_after_an_update(target: Target) -> None:
    tag = new_tag()
    created = [target.create_form(f"{tag}-{n}") for n in range(3)]
    _later(created[-1]["updatedAt"])
    change = {"id": created[0]["id"], "wasteDetails": {"name": "Boues modifiées"}}
    updated = target.gql(_UPDATE, {"i": change})
    assert "errors" not in updated, updated
    order = _mine(list(target.all_forms()), tag)
    assert order == [f"{tag}-2", f"{tag}-1", f"{tag}-0"]  # creation order, not updatedAt


def test_cursor_pages_exclude_the_cursor_and_walk_every_form_once(target: Target) -> None:
    tag = new_tag()
    for n in range(5):
        target.create_form(f"{tag}-{n}")
    walked = _mine(list(target.all_forms(page=2)), tag)
    assert walked == [f"{tag}-{n}" for n in (4, 3, 2, 1, 0)]


def test_updated_after_is_inclusive_and_brings_back_old_forms_changed_since(target: Target) -> None:
    tag = new_tag()
    old = target.create_form(f"{tag}-old")
    _later(old["updatedAt"])
    since = datetime.now(UTC)
    recent = target.create_form(f"{tag}-new")
    _later(recent["updatedAt"])
    changed = target.gql(_UPDATE, {"i": {"id": old["id"], "wasteDetails": {"name": "Boues modifiées"}}})
    changed_at = changed["data"]["updateForm"]["updatedAt"]
    stamp = since.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert sorted(_mine(list(target.all_forms(updatedAfter=stamp)), tag)) == [f"{tag}-new", f"{tag}-old"]
    exactly = _mine(list(target.all_forms(updatedAfter=changed_at)), tag)
    assert exactly == [f"{tag}-old"]  # updatedAt >= updatedAfter
    future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat(timespec="milliseconds")
    assert _mine(list(target.all_forms(updatedAfter=future.replace("+00:00", "Z"))), tag) == []


def test_custom_id_is_an_exact_match_and_not_unique(target: Target) -> None:
    tag = new_tag()
    target.create_form(tag)
    target.create_form(tag)
    target.create_form(f"{tag}-longer")
    assert [f["customId"] for f in target.forms(customId=tag)] == [tag, tag]
    assert target.forms(customId=tag[:-1]) == []


def _walk_companies(target: Target, size: int) -> tuple[list[str], int]:
    query = """query C($first: Int, $after: ID) { myCompanies(first: $first, after: $after) {
      totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id siret orgId } } } }"""
    walked: list[str] = []
    total = -1
    after = None
    while True:
        page = target.gql(query, {"first": size, "after": after})["data"]["myCompanies"]
        total = page["totalCount"] if total < 0 else total
        walked += [edge["node"]["orgId"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return walked, total
        after = page["pageInfo"]["endCursor"]
        assert after == page["edges"][-1]["cursor"]


def test_my_companies_pages_with_first_and_after(target: Target) -> None:
    walked, total = _walk_companies(target, 50)
    assert len(walked) == total
    assert len(set(walked)) == len(walked)
    assert _walk_companies(target, 7)[0] == walked  # the same order whatever the page size
    if target.is_emulator:
        assert total == 121  # the conformance user's producer and 120 other establishments


def test_a_page_is_at_most_100_forms(target: Target) -> None:
    producer, _, _ = target.require_companies()
    query = "query F($siret: String, $first: Int) { forms(siret: $siret, first: $first) { id } }"
    assert "errors" not in target.gql(query, {"siret": producer.siret, "first": 100})
    refused = target.gql(query, {"siret": producer.siret, "first": 101})
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_forms_of_a_company_the_user_is_not_in_are_forbidden(target: Target) -> None:
    target.require_companies()
    body = target.gql("query F($siret: String) { forms(siret: $siret, first: 1) { id } }",
                      {"siret": "42100000000040"})  # valid Luhn, nobody's company
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_a_user_of_several_companies_must_name_the_siret(target: Target) -> None:
    companies = target.gql("query { myCompanies(first: 2) { edges { node { orgId } } } }")
    if len(companies["data"]["myCompanies"]["edges"]) < 2:
        pytest.skip("the token's user belongs to one company: forms defaults to it")
    body = target.gql("query { forms(first: 1) { id } }")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
