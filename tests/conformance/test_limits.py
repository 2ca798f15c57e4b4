"""Limits the connector paces and batches by: rate limit, batch size, root fields, depth."""

from __future__ import annotations

import time

import httpx

from .target import Target, deep_query

ME = "query Me { me { email } }"


def _header(response: httpx.Response, name: str) -> int:
    value = response.headers.get(name)
    assert value is not None, f"no {name} header: {dict(response.headers)}"
    return int(value)


def test_every_answer_carries_the_rate_limit_headers(target: Target) -> None:
    first = target.post({"query": ME})
    second = target.post({"query": ME})
    assert first.status_code == second.status_code == 200
    limit = _header(first, "x-ratelimit-limit")
    assert limit >= 1
    assert _header(second, "x-ratelimit-remaining") < _header(first, "x-ratelimit-remaining") <= limit
    assert _header(first, "x-ratelimit-reset") > time.time() - 1  # epoch seconds of the window's end


def test_over_the_limit_the_answer_is_a_plain_429_with_retry_after(target: Target) -> None:
    target.require_emulator("exhausting the quota would block the IP for a minute")
    from td_emulator.config import EmulatorConfig
    from td_emulator.testing import serve_in_thread

    # A limit of 3 stands for the platform's 1000 per minute and IP.
    with serve_in_thread(EmulatorConfig(rate_limit=3)) as served, httpx.Client(base_url=served.url) as http:
        headers = {"Authorization": f"Bearer {target.token}"}
        answers = [http.post("", json={"query": ME}, headers=headers) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused.headers["content-type"].startswith("text/plain")
    assert "Quota" in refused.text
    assert int(refused.headers["retry-after"]) >= 1
    assert _header(refused, "x-ratelimit-remaining") == 0


def test_a_batch_of_five_runs_each_operation_and_answers_in_order(target: Target) -> None:
    batch = [{"query": f"query Q{i} {{ me {{ email }} }}", "operationName": f"Q{i}"} for i in range(5)]
    response = target.post(batch)
    assert response.status_code == 200, response.text
    answers = response.json()
    assert isinstance(answers, list)
    assert len(answers) == 5
    assert all(a["data"]["me"]["email"] for a in answers)


def test_a_batch_of_six_is_refused_whole_with_http_400(target: Target) -> None:
    response = target.post([{"query": ME}] * 6)
    assert response.status_code == 400
    assert "5" in response.text


def test_five_root_fields_pass_and_six_are_refused(target: Target) -> None:
    five = "query A { " + " ".join(f"a{i}: me {{ email }}" for i in range(5)) + " }"
    body = target.gql(five)
    assert len(body["data"]) == 5
    six = "query A { " + " ".join(f"a{i}: me {{ email }}" for i in range(6)) + " }"
    refused = target.gql(six, status=400)
    assert refused["errors"][0]["extensions"]["code"] == "GRAPHQL_MAX_OPERATIONS_ERROR"


def test_root_fields_count_over_every_operation_of_the_document_used_or_not(target: Target) -> None:
    document = ("query A { a0: me { email } a1: me { email } a2: me { email } } "
                "query B { b0: me { email } b1: me { email } b2: me { email } }")
    response = target.post({"query": document, "operationName": "A"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_MAX_OPERATIONS_ERROR"


def test_depth_ten_is_accepted_and_eleven_refused_before_execution(target: Target) -> None:
    ten = target.post({"query": deep_query(10)})
    assert ten.status_code == 200, ten.text  # runs: the BSFF does not exist, a resolver error
    assert ten.json()["errors"][0]["extensions"]["code"] != "GRAPHQL_VALIDATION_FAILED"
    eleven = target.post({"query": deep_query(11)})
    assert eleven.status_code == 400
    assert eleven.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
