"""What to do with an answer from Trackdéchets, as one pure table.

Inputs are what the client observed (HTTP status, GraphQL ``extensions.code`` values, or the kind
of transport failure) and whether the operation has effects. The one subtle column is
``is_mutation``: a read may always be sent again, whereas a mutation that may have reached the
resolver must be reconciled first. When the request surely never reached GraphQL execution
(connection refused, 429 from the rate limiter that sits before GraphQL), resending is safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import httpx

__all__ = ["TRANSPORT_ERRORS", "Action", "classify", "transport_error_label"]


class Action(StrEnum):
    OK = "ok"
    RETRY = "retry"
    """Send again as is (after a backoff): it was not executed, or it is a read."""
    RECONCILE_THEN_RETRY = "reconcile_then_retry"
    """It may have been executed: look the BSD up before anything is sent again."""
    REJECT = "reject"
    """Permanent for this payload: show the server's reason to the IT team."""
    PAUSE_AUTH = "pause_auth"
    """The token is refused: stop pushing, alert, retry slowly."""
    BUG = "bug"
    """The request is malformed: our bug, never resend unchanged."""


# Transport failures, by whether the request may have reached the server.
NEVER_SENT = frozenset({"connect", "timeout_connect", "timeout_pool"})
MAYBE_SENT = frozenset({"timeout_write", "write", "timeout_read", "dropped", "other"})
TRANSPORT_ERRORS = NEVER_SENT | MAYBE_SENT

# Worst first: when several GraphQL errors come back, the most severe decides.
_SEVERITY = (
    Action.PAUSE_AUTH,
    Action.BUG,
    Action.REJECT,
    Action.RECONCILE_THEN_RETRY,
    Action.RETRY,
    Action.OK,
)

_CODE_ACTIONS: dict[str, Action] = {
    "UNAUTHENTICATED": Action.PAUSE_AUTH,
    "GRAPHQL_PARSE_FAILED": Action.BUG,
    "GRAPHQL_VALIDATION_FAILED": Action.BUG,
    "GRAPHQL_MAX_OPERATIONS_ERROR": Action.BUG,
    "PERSISTED_QUERY_NOT_FOUND": Action.BUG,
    "BAD_USER_INPUT": Action.REJECT,
    "FORBIDDEN": Action.REJECT,
    # Throttled or failed third-party lookups (SIRENE, VIES): the resolver refused before writing.
    "TOO_MANY_REQUESTS": Action.RETRY,
    "EXTERNAL_SERVICE_ERROR": Action.RETRY,
}


def transport_error_label(exc: httpx.TransportError) -> str:
    """Name an httpx failure by how far the request got (see ``NEVER_SENT``/``MAYBE_SENT``)."""
    # Order matters: ConnectTimeout is both a TimeoutException and a connect failure.
    if isinstance(exc, httpx.ConnectTimeout):
        return "timeout_connect"
    if isinstance(exc, httpx.PoolTimeout):
        return "timeout_pool"
    if isinstance(exc, httpx.ConnectError):
        return "connect"
    if isinstance(exc, httpx.WriteTimeout):
        return "timeout_write"
    if isinstance(exc, httpx.ReadTimeout):
        return "timeout_read"
    if isinstance(exc, httpx.WriteError):
        return "write"
    if isinstance(exc, httpx.ReadError | httpx.RemoteProtocolError):
        return "dropped"
    return "other"


def _maybe_executed(is_mutation: bool) -> Action:
    return Action.RECONCILE_THEN_RETRY if is_mutation else Action.RETRY


def _worst(actions: Sequence[Action]) -> Action:
    return min(actions, key=_SEVERITY.index)


def classify(
    http_status: int | None,
    graphql_codes: Sequence[str],
    transport_error: str | None,
    *,
    is_mutation: bool,
) -> Action:
    """Decide the next step for one operation from what came back.

    ``graphql_codes`` lists ``errors[].extensions.code`` (``""`` for an error without a code);
    empty means no GraphQL error. ``transport_error`` is a label from ``transport_error_label``
    and wins over everything else since then there is no answer at all.
    """
    if transport_error is not None:
        if transport_error in NEVER_SENT:
            return Action.RETRY
        # A write or read that failed half-way, or anything we cannot name: the server may have
        # got the whole body. A reconcile costs one read; a duplicate BSD is a false declaration.
        return _maybe_executed(is_mutation)
    if http_status is None:
        raise ValueError("classify() needs an HTTP status or a transport error")

    if http_status == 429:
        # The IP rate limiter runs before GraphQL: nothing was executed.
        return Action.RETRY
    if http_status in (401, 403):
        return Action.PAUSE_AUTH
    if http_status == 408 or http_status >= 500:
        if http_status == 500 and graphql_codes:
            return _from_codes(graphql_codes, is_mutation)
        # A proxy cannot prove the app never started the request (the router cuts at 60 s while
        # the app goes on), so even 503 is in doubt for a mutation.
        return _maybe_executed(is_mutation)
    if http_status in (400, 413):
        if graphql_codes:
            action = _from_codes(graphql_codes, is_mutation)
            # A 400 never executed anything, so only data errors (variable coercion) or our bugs.
            return action if action in (Action.REJECT, Action.PAUSE_AUTH) else Action.BUG
        # Array too long, malformed JSON, body too large: refused before execution.
        return Action.BUG
    if 200 <= http_status < 300:
        return _from_codes(graphql_codes, is_mutation) if graphql_codes else Action.OK
    # Other 4xx (404, 405, 415...): the client talks to the wrong URL or the wrong way.
    return Action.BUG


def _from_codes(graphql_codes: Sequence[str], is_mutation: bool) -> Action:
    # INTERNAL_SERVER_ERROR and unknown codes both mean the resolver failed half-way for all we know.
    return _worst([_CODE_ACTIONS.get(code, _maybe_executed(is_mutation)) for code in graphql_codes])
