"""``TrackdechetsClient.query_many``: 25 reads in one request, and what a failing field costs."""

from __future__ import annotations

import json

import httpx
import pytest

from connector.trackdechets import Pacer, Rejected, RetryPolicy, TrackdechetsClient

from .fakes import FakeClock

READ = "query F($siret: String) { forms(siret: $siret) { id } }"


def client_for(handler: object) -> TrackdechetsClient:
    clock = FakeClock()
    return TrackdechetsClient(
        "http://td.test/", "token", transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
        pacer=Pacer(clock=clock, wait=clock.wait), sleep=lambda _s: None,
        retry=RetryPolicy(max_attempts=3, initial_backoff=0, max_backoff=0),
    )


def answer_each(document: dict, forbidden: set[str] = frozenset()) -> dict:  # type: ignore[assignment]
    """Each aliased ``forms`` answered with its own SIRET; a forbidden one nulls the whole document,
    as a failing non-null root field does."""
    values = document["variables"]
    data = {}
    errors = []
    for name, siret in values.items():
        alias = name.split("_")[0]
        if siret in forbidden:
            errors.append({"message": "interdit", "path": [alias], "extensions": {"code": "FORBIDDEN"}})
        data[alias] = [{"id": siret}]
    return {"data": None, "errors": errors} if errors else {"data": data}


def test_twenty_five_reads_travel_in_one_request_of_five_documents() -> None:
    bodies: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        return httpx.Response(200, json=[answer_each(d) for d in body])

    fields = [(READ, {"siret": f"S{i:02d}"}) for i in range(25)]
    outcomes = client_for(handler).query_many(fields)
    assert len(bodies) == 1
    (body,) = bodies
    assert isinstance(body, list)
    assert len(body) == 5
    assert all(d["query"].count("forms(") == 5 for d in body)
    assert [o.data for o in outcomes] == [[{"id": f"S{i:02d}"}] for i in range(25)]
    with pytest.raises(ValueError, match="1 to 25"):
        client_for(handler).query_many([*fields, fields[0]])


def test_one_refused_field_costs_its_document_mates_one_more_request_not_their_answers() -> None:
    bodies: list[list[dict]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        body = body if isinstance(body, list) else [body]
        bodies.append(body)
        answers = [answer_each(d, forbidden={"S03"}) for d in body]
        return httpx.Response(200, json=answers if len(answers) > 1 else answers[0])

    outcomes = client_for(handler).query_many([(READ, {"siret": f"S{i:02d}"}) for i in range(10)])
    assert len(bodies) == 2  # the four innocent fields of the first document, asked again once
    assert len(bodies[1]) == 1
    assert bodies[1][0]["query"].count("forms(") == 4
    assert isinstance(outcomes[3].error, Rejected)
    assert [o.data for i, o in enumerate(outcomes) if i != 3] == [
        [{"id": f"S{i:02d}"}] for i in range(10) if i != 3
    ]


def test_a_proxy_error_is_asked_again_and_answers_in_order() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(502, text="Bad gateway")
        return httpx.Response(200, json=[answer_each(d) for d in json.loads(request.content)])

    outcomes = client_for(handler).query_many([(READ, {"siret": f"S{i}"}) for i in range(7)])
    assert len(calls) == 2
    assert [o.data for o in outcomes] == [[{"id": f"S{i}"}] for i in range(7)]
