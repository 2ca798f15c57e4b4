"""What an aliased or batched mutation commits when one of its parts fails.

The connector sends creations one root field at a time, and reconciles by ``customId`` after any
ambiguous answer; these are the facts that design rests on.
"""

from __future__ import annotations

from typing import Any

from .target import FORM_FIELDS, Target, new_tag

_ALIASED = f"""mutation M($a: CreateFormInput!, $b: CreateFormInput!, $c: CreateFormInput!) {{
  a: createForm(createFormInput: $a) {{ {FORM_FIELDS} }}
  b: createForm(createFormInput: $b) {{ {FORM_FIELDS} }}
  c: createForm(createFormInput: $c) {{ {FORM_FIELDS} }}
}}"""


def _by_custom_id(target: Target, custom_id: str) -> list[dict[str, Any]]:
    return target.forms(customId=custom_id)


def test_one_failing_aliased_mutation_nulls_data_yet_the_earlier_ones_are_committed(target: Target) -> None:
    tag = new_tag()
    bad = target.form_input(f"{tag}-b")
    bad["recipient"]["company"]["siret"] = "85243162000124"  # Luhn fails
    body = target.gql(_ALIASED, {"a": target.form_input(f"{tag}-a"), "b": bad,
                                 "c": target.form_input(f"{tag}-c")})
    assert body["data"] is None  # createForm is non-null: one error nulls the whole answer
    assert [e["path"] for e in body["errors"]] == [["b"]]
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    committed = _by_custom_id(target, f"{tag}-a")
    assert len(committed) == 1  # committed, though the answer never showed its id
    target.created.append(committed[0]["id"])
    assert _by_custom_id(target, f"{tag}-b") == []
    # Root mutation fields run one after the other and execution stops at the failing one.
    assert _by_custom_id(target, f"{tag}-c") == []


def test_in_a_batch_each_operation_stands_alone(target: Target) -> None:
    tag = new_tag()
    query = f"mutation C($i: CreateFormInput!) {{ createForm(createFormInput: $i) {{ {FORM_FIELDS} }} }}"
    bad = target.form_input(f"{tag}-2")
    bad["wasteDetails"]["code"] = "not a code"
    response = target.post([{"query": query, "variables": {"i": target.form_input(f"{tag}-1")}},
                            {"query": query, "variables": {"i": bad}},
                            {"query": query, "variables": {"i": target.form_input(f"{tag}-3")}}])
    answers = response.json()
    assert [a.get("data") is not None and a["data"].get("createForm") is not None for a in answers] == \
        [True, False, True]
    target.created.extend(a["data"]["createForm"]["id"] for a in answers
                          if (a.get("data") or {}).get("createForm"))
    assert answers[1]["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert len(_by_custom_id(target, f"{tag}-1")) == len(_by_custom_id(target, f"{tag}-3")) == 1
