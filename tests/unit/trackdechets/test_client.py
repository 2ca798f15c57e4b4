"""The client over httpx.MockTransport: shapes on the wire, attribution, classification, retries."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from structlog.testing import capture_logs

from connector.trackdechets import (
    ClientBug,
    InDoubt,
    NotSent,
    Operation,
    Pacer,
    Rejected,
    ResponseInfo,
    RetryPolicy,
    TrackdechetsClient,
    Unauthenticated,
)

from .fakes import FakeClock

TOKEN = "tok_5ecret_do_not_leak_42"
CREATE = "mutation CreateForm($f: FormInput!) { createForm(createFormInput: $f) { id } }"
READ = "query Form($id: ID!) { form(id: $id) { id status } }"

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler answering from a script, keeping every request it got."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer

    def bodies(self) -> list[object]:
        return [json.loads(r.content) for r in self.requests]


def ok(data: dict) -> httpx.Response:
    return httpx.Response(200, json={"data": data})


def gql_error(code: str, message: str = "Erreur", status: int = 200, **ext: object) -> httpx.Response:
    return httpx.Response(status, json={"data": None, "errors": [
        {"message": message, "extensions": {"code": code, **ext}}]})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_700_000_000.0)


@pytest.fixture
def make_client(clock: FakeClock):
    made: list[TrackdechetsClient] = []

    def make(recorder: Recorder, **kwargs: object) -> TrackdechetsClient:
        sleeps: list[float] = []
        kwargs.setdefault("retry", RetryPolicy(max_attempts=3, initial_backoff=0.1, max_backoff=1.0))
        client = TrackdechetsClient(
            "http://td.test/", TOKEN, transport=httpx.MockTransport(recorder),
            pacer=Pacer(clock=clock, wait=clock.wait), sleep=sleeps.append, **kwargs,
        )
        client.sleeps = sleeps  # type: ignore[attr-defined]
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def ops(n: int) -> list[Operation]:
    return [Operation(CREATE, {"f": {"customId": f"K{i}"}}, tag=f"K{i}") for i in range(n)]


def test_a_single_mutation_is_a_plain_object_with_the_token(make_client):
    rec = Recorder(ok({"createForm": {"id": "f1"}}))
    client = make_client(rec, user_agent="tdc-test/1")
    (outcome,) = client.execute_mutations(ops(1))
    assert outcome.ok
    assert outcome.data == {"createForm": {"id": "f1"}}
    assert outcome.operation.tag == "K0"
    assert rec.bodies() == [{"query": CREATE, "variables": {"f": {"customId": "K0"}}}]
    assert rec.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert rec.requests[0].headers["user-agent"] == "tdc-test/1"


def test_a_batch_is_one_array_request_and_each_outcome_is_its_own(make_client):
    answer = httpx.Response(200, json=[
        {"data": {"createForm": {"id": "f0"}}},
        {"data": None, "errors": [{"message": "SIRET invalide", "path": ["createForm"], "extensions": {
            "code": "BAD_USER_INPUT",
            "issues": [{"code": "custom", "message": "SIRET invalide",
                        "path": ["emitter", "company", "siret"]}],
        }}]},
        {"data": None, "errors": [{"message": "Erreur serveur",
                                   "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]},
        {"data": None, "errors": [{"message": "Vous n'êtes pas membre",
                                   "extensions": {"code": "FORBIDDEN"}}]},
        {"data": {"createForm": {"id": "f4"}}},
    ])
    rec = Recorder(answer)
    client = make_client(rec)
    outcomes = client.execute_mutations(ops(5))
    assert len(rec.requests) == 1  # the in-doubt one is never resent by the client
    body = rec.bodies()[0]
    assert isinstance(body, list)
    assert [b["variables"]["f"]["customId"] for b in body] == ["K0", "K1", "K2", "K3", "K4"]
    assert [o.operation.tag for o in outcomes] == ["K0", "K1", "K2", "K3", "K4"]
    assert outcomes[0].data == {"createForm": {"id": "f0"}}
    assert outcomes[4].data == {"createForm": {"id": "f4"}}
    rejected = outcomes[1].error
    assert isinstance(rejected, Rejected)
    assert rejected.code == "BAD_USER_INPUT"
    assert rejected.server_message == "SIRET invalide"
    assert rejected.field_paths == ["emitter.company.siret"]
    assert rejected.operation_name == "CreateForm"
    assert rejected.status_code == 200
    assert isinstance(outcomes[2].error, InDoubt)
    assert outcomes[2].error.graphql_codes == ("INTERNAL_SERVER_ERROR",)
    assert isinstance(outcomes[3].error, Rejected)
    assert outcomes[3].error.code == "FORBIDDEN"


def test_more_than_five_operations_is_refused_before_sending(make_client):
    rec = Recorder(ok({}))
    with pytest.raises(ValueError, match="1 to 5"):
        make_client(rec).execute_mutations(ops(6))
    assert rec.requests == []


@pytest.mark.parametrize(
    ("answer", "error_cls"),
    [
        (httpx.Response(502, text="<html>Bad Gateway</html>"), InDoubt),
        (httpx.Response(503, text="Service Unavailable"), InDoubt),
        (httpx.Response(504, text="Gateway Timeout"), InDoubt),
        (httpx.ReadTimeout("timed out"), InDoubt),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), InDoubt),
        (httpx.Response(400, json={"error": "Batching is limited to 5 operations per request."}), ClientBug),
        (gql_error("GRAPHQL_PARSE_FAILED", "Syntax Error", status=400), ClientBug),
        (gql_error("GRAPHQL_MAX_OPERATIONS_ERROR", "Batching by query merging", status=400), ClientBug),
        (httpx.Response(413, text="Payload Too Large"), ClientBug),
    ],
)
def test_whole_request_failures_give_every_operation_the_same_kind(make_client, answer, error_cls):
    rec = Recorder(answer)
    outcomes = make_client(rec).execute_mutations(ops(3))
    assert len(rec.requests) == 1
    assert [type(o.error) for o in outcomes] == [error_cls] * 3
    assert [o.error.operation_name for o in outcomes] == ["CreateForm"] * 3


def test_in_doubt_carries_the_transport_error(make_client):
    rec = Recorder(httpx.ReadTimeout("timed out"))
    (outcome,) = make_client(rec).execute_mutations(ops(1))
    assert isinstance(outcome.error, InDoubt)
    assert outcome.error.transport_error == "timeout_read"
    assert outcome.error.attempt == 1


def test_connect_errors_are_retried_then_reported_not_sent(make_client):
    rec = Recorder(httpx.ConnectError("refused"))
    client = make_client(rec)
    outcomes = client.execute_mutations(ops(2))
    assert len(rec.requests) == 3  # max_attempts
    assert all(isinstance(o.error, NotSent) for o in outcomes)
    assert outcomes[0].error.attempt == 3
    assert len(client.sleeps) == 2
    assert client.sleeps[1] > client.sleeps[0] * 1.0 or client.sleeps[1] >= 0.2


def test_a_429_waits_for_the_reset_through_the_pacer_then_succeeds(make_client, clock):
    limited = httpx.Response(429, text="Quota de 1000 requêtes par 1 minute(s) excédé", headers={
        "X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(int(clock.now) + 20), "Retry-After": "60"})
    rec = Recorder(limited, httpx.Response(200, json=[{"data": {"createForm": {"id": "a"}}},
                                                      {"data": {"createForm": {"id": "b"}}}]))
    client = make_client(rec)
    outcomes = client.execute_mutations(ops(2))
    assert [o.data for o in outcomes] == [{"createForm": {"id": "a"}}, {"createForm": {"id": "b"}}]
    assert len(rec.requests) == 2
    assert client.sleeps == [0.0]  # no backoff on top of the pacer's wait
    assert 19.0 <= clock.now - 1_700_000_000.0 <= 20.5
    assert client.pacer.throttled == 1


def test_only_the_operations_refused_before_execution_are_resent(make_client):
    first = httpx.Response(200, json=[
        {"data": {"createForm": {"id": "a"}}},
        {"data": None, "errors": [{"message": "SIRENE", "extensions": {"code": "TOO_MANY_REQUESTS"}}]},
        {"data": None, "errors": [{"message": "non", "extensions": {"code": "BAD_USER_INPUT"}}]},
    ])
    rec = Recorder(first, ok({"createForm": {"id": "b"}}))
    outcomes = make_client(rec).execute_mutations(ops(3))
    assert len(rec.requests) == 2
    assert rec.bodies()[1] == {"query": CREATE, "variables": {"f": {"customId": "K1"}}}
    assert outcomes[0].data == {"createForm": {"id": "a"}}
    assert outcomes[1].data == {"createForm": {"id": "b"}}
    assert isinstance(outcomes[2].error, Rejected)


def test_variable_coercion_is_a_rejection(make_client):
    rec = Recorder(gql_error("BAD_USER_INPUT", 'Variable "$f" got invalid value', status=400))
    (outcome,) = make_client(rec).execute_mutations(ops(1))
    assert isinstance(outcome.error, Rejected)
    assert outcome.error.status_code == 400


def test_unauthenticated_is_fatal(make_client):
    rec = Recorder(gql_error("UNAUTHENTICATED", "Vous n'êtes pas connecté"))
    (outcome,) = make_client(rec).execute_mutations(ops(1))
    assert isinstance(outcome.error, Unauthenticated)
    with pytest.raises(Unauthenticated):
        make_client(rec).query(READ, {"id": "x"})


def test_reads_are_retried_on_5xx_and_timeouts(make_client):
    rec = Recorder(httpx.Response(502), httpx.ReadTimeout("slow"),
                   ok({"form": {"id": "x", "status": "SEALED"}}))
    client = make_client(rec)
    assert client.query(READ, {"id": "x"}) == {"form": {"id": "x", "status": "SEALED"}}
    assert len(rec.requests) == 3


def test_reads_honour_retry_after_and_raise_when_exhausted(make_client):
    rec = Recorder(httpx.Response(503, headers={"Retry-After": "7"}))
    client = make_client(rec)
    with pytest.raises(NotSent) as caught:
        client.query(READ, {"id": "x"})
    assert caught.value.status_code == 503
    assert caught.value.attempt == 3
    assert client.sleeps == [7.0, 7.0]


def test_query_refuses_a_mutation(make_client):
    with pytest.raises(ValueError, match="execute_mutations"):
        make_client(Recorder(ok({}))).query(CREATE, {})


def test_merged_reads_split_data_and_errors_per_field(make_client):
    rec = Recorder(httpx.Response(200, json={
        "data": {"r0": {"id": "a", "status": "SENT"}, "r1": None},
        "errors": [{"message": "Bordereau introuvable", "path": ["r1"],
                    "extensions": {"code": "BAD_USER_INPUT"}}],
    }))
    outcomes = make_client(rec).query_merged([(READ, {"id": "a"}), (READ, {"id": "b"})])
    assert rec.bodies()[0]["variables"] == {"r0_id": "a", "r1_id": "b"}
    assert outcomes[0].data == {"id": "a", "status": "SENT"}
    assert isinstance(outcomes[1].error, Rejected)
    assert outcomes[1].error.server_message == "Bordereau introuvable"


def test_on_response_gets_names_status_outcome_and_rate(make_client):
    infos: list[ResponseInfo] = []
    rec = Recorder(httpx.Response(200, json={"data": {"createForm": {"id": "a"}}}, headers={
        "X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "998", "X-RateLimit-Reset": "1700000060"}))
    make_client(rec, on_response=infos.append).execute_mutations(ops(1))
    (info,) = infos
    assert info.operation_names == ("CreateForm",)
    assert info.status == 200
    assert info.outcome == "ok"
    assert info.rate.remaining == 998
    assert info.duration >= 0


def test_the_token_never_reaches_logs_errors_or_reprs(make_client):
    def echo(request: httpx.Request) -> httpx.Response:
        # A hostile or buggy server echoing the Authorization header back.
        return httpx.Response(502, text=f"bad gateway for {request.headers['authorization']}")

    rec = Recorder(httpx.ConnectError("refused"), echo, gql_error("BAD_USER_INPUT", f"jeton {TOKEN}"))
    client = make_client(rec)
    with capture_logs() as logs:
        first = client.execute_mutations(ops(2))
        second = client.execute_mutations(ops(1))
        with pytest.raises(Rejected) as caught:
            client.query(READ, {"id": "x"})
    assert len(logs) > 3
    texts = [repr(logs), repr(client), str(caught.value), repr(caught.value)]
    texts += [str(o.error) + repr(o.error) + repr(o.error.context) for o in first + second]
    texts += [o.error.server_message for o in second if isinstance(o.error, Rejected)]
    assert any("***" in t for t in texts)  # the echoed token was seen, and masked
    for text in texts:
        assert TOKEN not in text
