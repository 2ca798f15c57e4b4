"""The Trackdéchets GraphQL client: one pooled HTTP connection, paced, classified, retried.

It sends what it is given and reports, per operation, either the data or a classified error. It
resends on its own only what cannot create a duplicate (``NotSent``); anything that may have been
executed comes back as ``InDoubt`` for the engine to reconcile. Every request passes the process
pacer first and feeds it the rate-limit headers after.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import structlog
from pydantic import SecretStr

from connector.trackdechets.batching import MAX_OPERATIONS, MergedRead, chunk, merge_reads
from connector.trackdechets.classify import Action, classify, transport_error_label
from connector.trackdechets.errors import (
    ClientBug,
    InDoubt,
    NotSent,
    Rejected,
    TrackdechetsError,
    Unauthenticated,
)
from connector.trackdechets.pacing import Pacer, RateHeaders, parse_rate_headers
from connector.trackdechets.retry import RetryPolicy, build_retrying

__all__ = ["Operation", "OperationOutcome", "ResponseInfo", "TrackdechetsClient"]

log = structlog.get_logger("connector.trackdechets")

_NAME = re.compile(r"^\s*(?:query|mutation)\s+([_A-Za-z]\w*)")
_FIRST_FIELD = re.compile(r"{\s*(?:[_A-Za-z]\w*\s*:\s*)?([_A-Za-z]\w*)")
_ERROR_CLASSES: dict[Action, type[TrackdechetsError]] = {
    Action.RETRY: NotSent,
    Action.RECONCILE_THEN_RETRY: InDoubt,
    Action.REJECT: Rejected,
    Action.PAUSE_AUTH: Unauthenticated,
    Action.BUG: ClientBug,
}


@dataclass(frozen=True)
class Operation:
    """One GraphQL operation; ``tag`` is the caller's own reference (a record key), never sent."""

    query: str
    variables: Mapping[str, Any] | None = None
    operation_name: str | None = None
    tag: Any = None

    @property
    def label(self) -> str:
        """A name for logs and metrics: the operation name, else the first root field."""
        if self.operation_name:
            return self.operation_name
        match = _NAME.match(self.query) or _FIRST_FIELD.search(self.query)
        return match.group(1) if match else "anonymous"

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"query": self.query}
        if self.variables is not None:
            out["variables"] = dict(self.variables)
        if self.operation_name:
            out["operationName"] = self.operation_name
        return out


@dataclass(frozen=True)
class OperationOutcome:
    """What became of one operation: ``data`` on success, else a classified ``error``."""

    operation: Operation
    data: dict[str, Any] | None = None
    error: TrackdechetsError | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    """The raw GraphQL errors, also when ``data`` is partially there."""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ResponseInfo:
    """One HTTP exchange, for metrics and logs (never the body, never the token)."""

    operation_names: tuple[str, ...]
    status: int | None
    outcome: str
    duration: float
    rate: RateHeaders
    attempt: int


class TrackdechetsClient:
    """Talks GraphQL over HTTP to one Trackdéchets endpoint; thread-safe, one connection pool."""

    def __init__(
        self,
        url: str,
        token: str | SecretStr,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30,
        pacer: Pacer | None = None,
        retry: RetryPolicy | None = None,
        user_agent: str = "trackdechets-connector",
        on_response: Callable[[ResponseInfo], None] | None = None,
        stop: threading.Event | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.url = url
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        self.pacer = pacer or Pacer()
        self.retry = retry or RetryPolicy()
        self._on_response = on_response
        self._stop = stop or threading.Event()
        # Event.wait returns a bool that tenacity ignores: a valid ``sleep``.
        self._sleep = sleep or cast("Callable[[float], None]", self._stop.wait)
        self._http = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"User-Agent": user_agent, "Content-Type": "application/json",
                     "Accept": "application/json"},
        )

    def __repr__(self) -> str:
        return f"TrackdechetsClient(url={self.url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TrackdechetsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- reads --------------------------------------------------------------------------------

    def query(
        self, document: str, variables: Mapping[str, Any] | None = None,
        operation_name: str | None = None,
    ) -> dict[str, Any]:
        """Run a read; retried on every transient failure since reads have no effect."""
        outcome = self._read(Operation(document, variables, operation_name))
        if outcome.error is not None:
            raise outcome.error
        return outcome.data or {}

    def query_merged(self, fields: Sequence[tuple[str, Mapping[str, Any]]]) -> list[OperationOutcome]:
        """Run up to 5 one-field reads as one request; one outcome per field, in order."""
        merged: MergedRead = merge_reads(fields)
        outcome = self._read(Operation(merged.document, merged.variables, "MergedRead"), partial=True)
        ops = [Operation(doc, values) for doc, values in fields]
        if outcome.error is not None and outcome.data is None:
            return [OperationOutcome(op, error=outcome.error) for op in ops]
        outcomes = []
        for op, part in zip(ops, merged.split(outcome.data, outcome.errors), strict=True):
            error = None
            if part.errors:
                error = self._error_for(op, 200, part.errors, False, attempt=1)
            outcomes.append(OperationOutcome(op, part.data if error is None else None, error, part.errors))
        return outcomes

    def query_many(self, fields: Sequence[tuple[str, Mapping[str, Any]]]) -> list[OperationOutcome]:
        """Run up to 25 one-field reads as ONE request: a JSON array of up to 5 merged documents.

        Both server caps at once (5 documents per array, 5 root fields per document). One outcome
        per field, in order. A document that failed as a whole (nothing came back for it) is sent
        again up to the retry policy, alone or with the others that failed; reads have no effect.
        """
        cap = MAX_OPERATIONS * MAX_OPERATIONS
        if not 1 <= len(fields) <= cap:
            raise ValueError(f"query_many takes 1 to {cap} fields, got {len(fields)}")
        groups = chunk(fields)
        merged = [merge_reads(group) for group in groups]
        ops = [Operation(m.document, m.variables, "MergedRead") for m in merged]
        answers: list[OperationOutcome | None] = [None] * len(ops)
        pending = list(range(len(ops)))
        try:
            for attempt in build_retrying(self.retry, sleep=self._sleep):
                with attempt:
                    results = self._exchange([ops[i] for i in pending], is_mutation=False,
                                             attempt=attempt.retry_state.attempt_number)
                    again = []
                    for index, result in zip(pending, results, strict=True):
                        answers[index] = result
                        if isinstance(result.error, NotSent) and result.data is None:
                            again.append(index)
                    pending = again
                    if pending:
                        error = answers[pending[0]].error  # type: ignore[union-attr]
                        assert error is not None
                        raise error
        except NotSent:
            pass  # exhausted: those documents keep their last error
        outcomes: list[OperationOutcome | None] = []
        innocent: list[int] = []  # fields of a document another field's error nulled whole
        for group, merged_read, answer in zip(groups, merged, answers, strict=True):
            assert answer is not None
            group_ops = [Operation(doc, values) for doc, values in group]
            parts = merged_read.split(answer.data, answer.errors)
            if answer.error is not None and answer.data is None:
                # A non-null root field that fails nulls the whole document; the errors' paths
                # tell which fields failed: the others are asked again without them.
                blamed = {e["path"][0] for e in answer.errors if e.get("path")}
                for alias, op, part in zip(merged_read.aliases, group_ops, parts, strict=True):
                    if blamed and alias not in blamed:
                        innocent.append(len(outcomes))
                        outcomes.append(None)
                    elif blamed:
                        error = self._error_for(op, 200, part.errors, False, attempt=1) or answer.error
                        outcomes.append(OperationOutcome(op, error=error, errors=part.errors))
                    else:
                        outcomes.append(OperationOutcome(op, error=answer.error, errors=answer.errors))
                continue
            for op, part in zip(group_ops, parts, strict=True):
                error = self._error_for(op, 200, part.errors, False, attempt=1) if part.errors else None
                data = part.data if error is None else None
                outcomes.append(OperationOutcome(op, data, error, part.errors))
        if innocent:
            answered = self.query_many([fields[i] for i in innocent])
            for index, outcome in zip(innocent, answered, strict=True):
                outcomes[index] = outcome
        return [o for o in outcomes if o is not None]

    def _read(self, op: Operation, *, partial: bool = False) -> OperationOutcome:
        if _NAME.match(op.query) and op.query.lstrip().startswith("mutation"):
            raise ValueError("query() runs reads only; send mutations with execute_mutations()")
        try:
            for attempt in build_retrying(self.retry, sleep=self._sleep):
                with attempt:
                    (outcome,) = self._exchange([op], is_mutation=False,
                                                attempt=attempt.retry_state.attempt_number)
                    # A merged read with some data back is a success with per-field errors.
                    if outcome.error is not None and not (partial and outcome.data is not None):
                        raise outcome.error
                    return outcome
        except TrackdechetsError as exc:
            return OperationOutcome(op, error=exc)
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    # --- mutations ----------------------------------------------------------------------------

    def execute_mutations(self, ops: Sequence[Operation]) -> list[OperationOutcome]:
        """Send up to 5 mutations as one HTTP request; outcomes are index-aligned with ``ops``.

        Operations refused before execution (``NotSent``) are sent again, up to the policy; an
        ``InDoubt`` one never is: the caller reconciles first.
        """
        if not 1 <= len(ops) <= MAX_OPERATIONS:
            raise ValueError(f"execute_mutations takes 1 to {MAX_OPERATIONS} operations, got {len(ops)}")
        outcomes: list[OperationOutcome | None] = [None] * len(ops)
        pending = list(range(len(ops)))
        try:
            for attempt in build_retrying(self.retry, sleep=self._sleep):
                with attempt:
                    results = self._exchange([ops[i] for i in pending], is_mutation=True,
                                             attempt=attempt.retry_state.attempt_number)
                    again: list[int] = []
                    for index, result in zip(pending, results, strict=True):
                        outcomes[index] = result
                        if isinstance(result.error, NotSent):
                            again.append(index)
                    pending = again
                    if pending:
                        error = outcomes[pending[0]].error  # type: ignore[union-attr]
                        assert error is not None
                        raise error
        except NotSent:
            pass  # exhausted: the outcomes keep their last NotSent errors
        return [o for o in outcomes if o is not None]

    # --- one HTTP exchange --------------------------------------------------------------------

    def _exchange(
        self, ops: Sequence[Operation], *, is_mutation: bool, attempt: int
    ) -> list[OperationOutcome]:
        """One paced HTTP request for ``ops``; every failure is turned into per-operation errors."""
        names = tuple(op.label for op in ops)
        if not self.pacer.acquire(stop=self._stop):
            err = "stopped before sending"
            return [OperationOutcome(op, error=NotSent(err, operation_name=op.label, attempt=attempt))
                    for op in ops]
        payload: Any = ops[0].body() if len(ops) == 1 else [op.body() for op in ops]
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        started = time.monotonic()
        try:
            response = self._http.post(self.url, content=json.dumps(payload).encode(), headers=headers)
        except httpx.TransportError as exc:
            self.pacer.observe(None, None)
            label = transport_error_label(exc)
            action = classify(None, (), label, is_mutation=is_mutation)
            self._report(names, None, label, started, None, attempt)
            message = f"no answer from Trackdéchets ({label}: {type(exc).__name__})"
            return [OperationOutcome(op, error=self._make(action, message, op, None, (), attempt,
                                                          transport_error=label)) for op in ops]
        self.pacer.observe(response.headers, response.status_code)
        outcomes = self._parse(response, ops, is_mutation=is_mutation, attempt=attempt)
        worst = min((o.error for o in outcomes if o.error), default=None,
                    key=lambda e: list(_ERROR_CLASSES.values()).index(type(e)))
        label = "ok" if worst is None else type(worst).__name__
        self._report(names, response.status_code, label, started, response.headers, attempt)
        return outcomes

    def _report(self, names: tuple[str, ...], status: int | None, outcome: str, started: float,
                headers: httpx.Headers | None, attempt: int) -> None:
        info = ResponseInfo(names, status, outcome, time.monotonic() - started,
                            parse_rate_headers(headers, time.time()), attempt)
        log.debug("trackdechets.response", operations=list(names), status=status, outcome=outcome,
                  duration_s=round(info.duration, 4), attempt=attempt)
        if self._on_response is not None:
            self._on_response(info)

    def _parse(self, response: httpx.Response, ops: Sequence[Operation], *, is_mutation: bool,
               attempt: int) -> list[OperationOutcome]:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if len(ops) > 1 and isinstance(body, list) and len(body) == len(ops):
            pairs = zip(ops, body, strict=True)
            return [self._one(op, status, item, is_mutation, attempt) for op, item in pairs]
        if len(ops) == 1 and isinstance(body, dict) and ("data" in body or "errors" in body):
            return [self._one(ops[0], status, body, is_mutation, attempt)]
        # The whole request failed before per-operation answers existed (proxy, limiter, caps).
        errors = body.get("errors") if isinstance(body, dict) else None
        codes = _codes(errors) if isinstance(errors, list) else []
        action = classify(status, codes, None, is_mutation=is_mutation)
        if action is Action.OK:
            # A 2xx whose shape we cannot attribute: executed for all we know.
            action = classify(500, (), None, is_mutation=is_mutation)
        detail = _server_detail(body, response.text)
        message = f"Trackdéchets answered HTTP {status}" + (f": {detail}" if detail else "")
        retry_after = self._retry_after(response)
        return [OperationOutcome(op, error=self._make(action, message, op, status, codes, attempt,
                                                      retry_after=retry_after)) for op in ops]

    def _one(
        self, op: Operation, status: int, item: Any, is_mutation: bool, attempt: int
    ) -> OperationOutcome:
        if not isinstance(item, dict):
            error: TrackdechetsError | None = self._make(classify(500, (), None, is_mutation=is_mutation),
                                                         "unexpected answer shape", op, status, (), attempt)
            return OperationOutcome(op, error=error)
        data, errors = item.get("data"), item.get("errors") or []
        if not errors and status < 300:
            return OperationOutcome(op, data=data or {})
        if not errors:
            errors = [{"message": f"HTTP {status}"}]
        error = self._error_for(op, status, errors, is_mutation, attempt)
        return OperationOutcome(op, data=data, error=error, errors=list(errors))

    def _error_for(self, op: Operation, status: int, errors: Sequence[Mapping[str, Any]],
                   is_mutation: bool, attempt: int) -> TrackdechetsError | None:
        codes = _codes(errors)
        action = classify(status, codes, None, is_mutation=is_mutation)
        if action is Action.OK:
            return None
        messages = "; ".join(str(e.get("message", "")) for e in errors)
        issues = [i for e in errors for i in (e.get("extensions") or {}).get("issues") or []
                  if isinstance(i, dict)]
        paths = [".".join(str(p) for p in i.get("path") or []) for i in issues]
        paths += [str(a) for e in errors for a in (e.get("extensions") or {}).get("invalidArgs") or []]
        return self._make(action, f"{op.label}: {messages}", op, status, codes, attempt,
                          server_message=messages, issues=issues, field_paths=[p for p in paths if p])

    def _make(self, action: Action, message: str, op: Operation, status: int | None,
              codes: Sequence[str], attempt: int, **extra: Any) -> TrackdechetsError:
        cls = _ERROR_CLASSES[action]
        common: dict[str, Any] = {"status_code": status, "graphql_codes": codes,
                                  "operation_name": op.label, "attempt": attempt}
        if "transport_error" in extra:
            common["transport_error"] = extra.pop("transport_error")
        if cls is Rejected:
            code = next((c for c in codes if c in ("BAD_USER_INPUT", "FORBIDDEN")), None)
            return Rejected(self._scrub(message), code=code,
                            server_message=self._scrub(extra.get("server_message", "")),
                            issues=extra.get("issues", ()), field_paths=extra.get("field_paths", ()),
                            **common)
        if cls is NotSent:
            return NotSent(self._scrub(message), retry_after=extra.get("retry_after"), **common)
        return cls(self._scrub(message), **common)

    def _retry_after(self, response: httpx.Response) -> float | None:
        if response.status_code == 429:
            return 0.0  # the pacer holds every request until the reset: no extra wait here
        value = response.headers.get("retry-after")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    def _scrub(self, text: str) -> str:
        """Belt and braces: a server echoing our token must not put it in a log line."""
        secret = self._token.get_secret_value()
        return text.replace(secret, "***") if secret else text


def _codes(errors: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str((e.get("extensions") or {}).get("code") or "") for e in errors if isinstance(e, Mapping)]


def _server_detail(body: Any, text: str) -> str:
    if isinstance(body, dict):
        if isinstance(body.get("error"), str):
            return str(body["error"])
        errors = body.get("errors")
        if isinstance(errors, list):
            return "; ".join(str(e.get("message", "")) for e in errors if isinstance(e, dict))
    return text.strip()[:200]
