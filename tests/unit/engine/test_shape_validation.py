"""Schema validation cached by payload shape: same verdicts as a full validation, computed once."""

from __future__ import annotations

import copy

import pytest
from graphql import GraphQLSchema

import connector.engine.validation as validation
from connector.domain.kinds import KINDS, KindName
from connector.engine.validation import ShapeValidator

BSDD = KINDS[KindName.BSDD]
PAYLOAD = {
    "customId": "K-1",
    "emitter": {"type": "PRODUCER", "company": {"siret": "85243162000123", "name": "Garage"}},
    "wasteDetails": {
        "code": "13 02 05*",
        "quantity": 1.25,
        "quantityType": "REAL",
        "packagingInfos": [{"type": "FUT", "quantity": 4}],
        "consistences": ["LIQUID"],
    },
}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    seen: list[int] = []
    real = validation.validate_operation

    def counting(*args: object, **kwargs: object) -> list[str]:
        seen.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(validation, "validate_operation", counting)
    return seen


def variant(**changes: object) -> dict:
    payload = copy.deepcopy(PAYLOAD)
    for path, value in changes.items():
        node = payload
        *parents, last = path.split("__")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value
    return payload


def test_a_shape_is_validated_once(official_schema: GraphQLSchema, calls: list[int]) -> None:
    validator = ShapeValidator(official_schema)
    assert validator.problems(BSDD, PAYLOAD) == []
    other_names = variant(customId="K-2", emitter__company__name="Another garage", wasteDetails__quantity=3.5)
    assert validator.problems(BSDD, other_names) == []
    assert len(calls) == 1  # same shape: no second validation


@pytest.mark.parametrize(
    ("changes", "word"),
    [
        ({"emitter__type": "PRODUCTEUR"}, "EmitterType"),  # an enum value, not a string
        ({"wasteDetails__quantity": "1,25"}, "Float"),  # a string where a number goes
        ({"wasteDetails__packagingInfos__0__quantity": 2**40}, "Int"),  # beyond GraphQL's 32-bit Int
        ({"wasteDetails__consistences__0": "LIQUIDE"}, "Consistence"),
    ],
)
def test_what_the_shape_keeps_is_what_validation_needs(
    official_schema: GraphQLSchema, changes: dict, word: str
) -> None:
    validator = ShapeValidator(official_schema)
    assert validator.problems(BSDD, PAYLOAD) == []
    problems = validator.problems(BSDD, variant(**changes))
    assert problems
    assert any(word in p for p in problems), problems
