"""The classification table, row by row, for reads and mutations."""

from __future__ import annotations

import httpx
import pytest

from connector.trackdechets.classify import TRANSPORT_ERRORS, Action, classify, transport_error_label

A = Action
M, R = True, False  # is_mutation

# (status, codes, transport, is_mutation, expected)
TABLE = [
    # success
    (200, [], None, M, A.OK),
    (200, [], None, R, A.OK),
    # transport failures: never sent is always safe; half-way is in doubt for a mutation only
    (None, [], "connect", M, A.RETRY),
    (None, [], "timeout_connect", M, A.RETRY),
    (None, [], "timeout_pool", M, A.RETRY),
    (None, [], "timeout_write", M, A.RECONCILE_THEN_RETRY),
    (None, [], "write", M, A.RECONCILE_THEN_RETRY),
    (None, [], "timeout_read", M, A.RECONCILE_THEN_RETRY),
    (None, [], "dropped", M, A.RECONCILE_THEN_RETRY),
    (None, [], "other", M, A.RECONCILE_THEN_RETRY),
    (None, [], "timeout_read", R, A.RETRY),
    (None, [], "dropped", R, A.RETRY),
    (None, [], "connect", R, A.RETRY),
    # rate limit: before GraphQL, nothing executed
    (429, [], None, M, A.RETRY),
    (429, [], None, R, A.RETRY),
    # proxy / app failures
    (502, [], None, M, A.RECONCILE_THEN_RETRY),
    (503, [], None, M, A.RECONCILE_THEN_RETRY),
    (504, [], None, M, A.RECONCILE_THEN_RETRY),
    (408, [], None, M, A.RECONCILE_THEN_RETRY),
    (500, [], None, M, A.RECONCILE_THEN_RETRY),
    (502, [], None, R, A.RETRY),
    (503, [], None, R, A.RETRY),
    (504, [], None, R, A.RETRY),
    (408, [], None, R, A.RETRY),
    (500, ["INTERNAL_SERVER_ERROR"], None, M, A.RECONCILE_THEN_RETRY),
    (500, ["BAD_USER_INPUT"], None, M, A.REJECT),
    # resolver errors with HTTP 200
    (200, ["INTERNAL_SERVER_ERROR"], None, M, A.RECONCILE_THEN_RETRY),
    (200, ["INTERNAL_SERVER_ERROR"], None, R, A.RETRY),
    (200, ["SOMETHING_NEW"], None, M, A.RECONCILE_THEN_RETRY),
    (200, [""], None, R, A.RETRY),
    (200, ["BAD_USER_INPUT"], None, M, A.REJECT),
    (200, ["FORBIDDEN"], None, M, A.REJECT),
    (200, ["BAD_USER_INPUT"], None, R, A.REJECT),
    (200, ["UNAUTHENTICATED"], None, M, A.PAUSE_AUTH),
    (200, ["UNAUTHENTICATED"], None, R, A.PAUSE_AUTH),
    (200, ["TOO_MANY_REQUESTS"], None, M, A.RETRY),
    (200, ["EXTERNAL_SERVICE_ERROR"], None, M, A.RETRY),
    (200, ["GRAPHQL_VALIDATION_FAILED"], None, R, A.BUG),
    # the worst code decides
    (200, ["BAD_USER_INPUT", "UNAUTHENTICATED"], None, M, A.PAUSE_AUTH),
    (200, ["INTERNAL_SERVER_ERROR", "FORBIDDEN"], None, M, A.REJECT),
    (200, ["TOO_MANY_REQUESTS", "INTERNAL_SERVER_ERROR"], None, M, A.RECONCILE_THEN_RETRY),
    # HTTP 400: refused before execution
    (400, ["GRAPHQL_PARSE_FAILED"], None, M, A.BUG),
    (400, ["GRAPHQL_VALIDATION_FAILED"], None, M, A.BUG),
    (400, ["GRAPHQL_MAX_OPERATIONS_ERROR"], None, R, A.BUG),
    (400, ["BAD_USER_INPUT"], None, M, A.REJECT),  # variable coercion
    (400, ["INTERNAL_SERVER_ERROR"], None, M, A.BUG),
    (400, [], None, M, A.BUG),  # "Batching is limited to 5 operations per request."
    (413, [], None, M, A.BUG),
    (404, [], None, R, A.BUG),
    (405, [], None, M, A.BUG),
    # auth at the HTTP level (a proxy or a future server)
    (401, [], None, M, A.PAUSE_AUTH),
    (403, [], None, R, A.PAUSE_AUTH),
]


@pytest.mark.parametrize(("status", "codes", "transport", "is_mutation", "expected"), TABLE)
def test_table(status, codes, transport, is_mutation, expected):
    assert classify(status, codes, transport, is_mutation=is_mutation) is expected


def test_every_transport_label_is_in_the_table():
    covered = {row[2] for row in TABLE if row[2]}
    assert covered == TRANSPORT_ERRORS


def test_every_action_is_reachable():
    assert {row[4] for row in TABLE} == set(Action)


def test_a_transport_error_wins_over_a_status():
    assert classify(200, [], "dropped", is_mutation=True) is A.RECONCILE_THEN_RETRY


def test_nothing_to_classify_is_a_programming_error():
    with pytest.raises(ValueError, match="HTTP status or a transport error"):
        classify(None, [], None, is_mutation=True)


REQ = httpx.Request("POST", "http://td.test/")


@pytest.mark.parametrize(
    ("exc", "label"),
    [
        (httpx.ConnectError("refused", request=REQ), "connect"),
        (httpx.ConnectTimeout("slow", request=REQ), "timeout_connect"),
        (httpx.PoolTimeout("pool", request=REQ), "timeout_pool"),
        (httpx.WriteTimeout("w", request=REQ), "timeout_write"),
        (httpx.WriteError("w", request=REQ), "write"),
        (httpx.ReadTimeout("r", request=REQ), "timeout_read"),
        (httpx.ReadError("r", request=REQ), "dropped"),
        (httpx.RemoteProtocolError("gone", request=REQ), "dropped"),
        (httpx.UnsupportedProtocol("ftp", request=REQ), "other"),
    ],
)
def test_transport_labels(exc, label):
    assert transport_error_label(exc) == label
