"""Limits and faults over real HTTP: rate limit headers, batching, depth, drops, outages."""

from __future__ import annotations

import httpx
import pytest

from td_emulator.config import EmulatorConfig, FaultConfig, OutageWindow
from td_emulator.testing import serve_in_thread

from .helpers import CREATE_FORM, Api, form_input


def test_rate_limit_headers_and_429() -> None:
    with serve_in_thread(EmulatorConfig(rate_limit=3, rate_window_seconds=30)) as served:
        api = Api(served)
        statuses = []
        for _ in range(4):
            response = api.post("{ me { id } }")
            statuses.append(response.status_code)
            assert response.headers["X-RateLimit-Limit"] == "3"
            assert int(response.headers["X-RateLimit-Reset"]) > 0
        assert statuses == [200, 200, 200, 429]
        assert response.headers["X-RateLimit-Remaining"] == "0"
        assert "Quota de 3 requêtes" in response.text
        api.http.close()


def test_batch_of_five_runs_each_and_six_is_refused(api: Api) -> None:
    one = {"query": "{ me { id } }"}
    answers = api.http.post("", json=[one] * 5)
    assert answers.status_code == 200
    assert len(answers.json()) == 5
    refused = api.http.post("", json=[one] * 6)
    assert refused.status_code == 400
    assert refused.json() == {"error": "Batching is limited to 5 operations per request."}


def test_more_than_five_root_fields_depth_parse_and_validation(api: Api) -> None:
    six = api.post("{ " + " ".join(f"a{n}: me {{ id }}" for n in range(6)) + " }")
    assert six.status_code == 400
    assert six.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_MAX_OPERATIONS_ERROR"
    assert api.post("{ me { id ").json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    unknown = api.post("{ me { nope } }")
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    deep = "{ bsffs { edges { node { packagings { nextBsff { packagings { nextBsff { packagings {"
    deep += " nextBsff { packagings { nextBsff { id } } } } } } } } } } } }"
    too_deep = api.post(deep)
    assert too_deep.status_code == 400
    assert "depth" in too_deep.json()["errors"][0]["message"]
    big = api.http.post("", content=b'{"query": "' + b" " * 1_100_000 + b'{ me { id } }"}')
    assert big.status_code == 413


def test_a_full_introspection_query_passes_the_depth_limit(api: Api) -> None:
    """Like graphql-depth-limit, introspection fields (``__schema``...) are not counted."""
    from graphql import build_client_schema, get_introspection_query

    answer = api.post(get_introspection_query(descriptions=False))
    assert answer.status_code == 200
    schema = build_client_schema(answer.json()["data"])
    assert "createForm" in schema.mutation_type.fields


def test_journal_records_operations_fields_and_status(api: Api) -> None:
    api.post("query Who { me { id } myCompanies { totalCount } }")
    entries = api.http.get("_emulator/journal").json()
    assert entries[-1]["operations"] == [{"operationName": None, "fields": ["me", "myCompanies"],
                                          "root_fields": 2}]
    assert entries[-1]["status"] == 200


def test_drop_after_commit_leaves_the_bsd_created() -> None:
    config = EmulatorConfig(faults=FaultConfig(drop_after_commit_probability=1.0), random_seed=1)
    with serve_in_thread(config) as served:
        api = Api(served)
        with pytest.raises(httpx.RemoteProtocolError):
            api.post(CREATE_FORM, {"i": form_input(custom_id="IN-DOUBT")})
        assert [f["customId"] for f in served.emulator.store.newest_first("BSDD")] == ["IN-DOUBT"]
        assert api.post("{ me { id } }").status_code == 200  # queries are never dropped
        api.http.close()


def test_proxy_errors_outage_and_forced_429_from_the_admin_api(api: Api) -> None:
    faults = {"error_probability": 1.0, "error_statuses": [502]}
    assert api.http.put("_emulator/faults", json=faults).status_code == 200
    assert api.post("{ me { id } }").status_code == 502
    assert api.http.put("_emulator/faults", json={"force_429_count": 2}).status_code == 200
    assert [api.post("{ me { id } }").status_code for _ in range(3)] == [429, 429, 200]
    bad = api.http.put("_emulator/faults", json={"error_probability": 3})
    assert bad.status_code == 400
    api.served.emulator.faults = FaultConfig(outages=[OutageWindow(start_seconds=0, end_seconds=1e9)])
    assert api.post("{ me { id } }").status_code == 503


def test_latency_is_added() -> None:
    with serve_in_thread(EmulatorConfig(faults=FaultConfig(latency_ms=150))) as served:
        api = Api(served)
        response = api.post("{ me { id } }")
        assert response.elapsed.total_seconds() >= 0.15
        api.http.close()
