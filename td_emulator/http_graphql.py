"""``POST /``: limits, faults, batching and GraphQL execution, as the platform's HTTP layer does.

Written as a bare ASGI app rather than a Starlette endpoint: the answer path is the hot loop of
every benchmark, and the in-doubt fault needs the server's own ``send`` to cut the connection.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import structlog
from graphql import ExecutionResult, GraphQLError, execute

from .instance import Emulator
from .schema import CheckedDocument, DocumentCache

__all__ = ["GraphQLHttpApp"]

log = structlog.get_logger("td_emulator")

Headers = list[tuple[bytes, bytes]]
_JSON = (b"content-type", b"application/json; charset=utf-8")
_TEXT = (b"content-type", b"text/plain; charset=utf-8")
_STATUS_CODES = {"GRAPHQL_PARSE_FAILED": 400, "GRAPHQL_VALIDATION_FAILED": 400,
                 "GRAPHQL_MAX_OPERATIONS_ERROR": 400}


def _dump(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _format_error(error: GraphQLError) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    extensions = dict(formatted.get("extensions") or {})
    if "code" not in extensions:
        if error.original_error is not None and not isinstance(error.original_error, GraphQLError):
            log.error("resolver_crashed", error=repr(error.original_error), path=error.path)
            formatted["message"] = "Erreur serveur"
        extensions["code"] = "INTERNAL_SERVER_ERROR"
    formatted["extensions"] = extensions
    return formatted


class _DroppedError(Exception):
    """The in-doubt fault fired: the mutation is committed, the answer is never sent."""


class GraphQLHttpApp:
    """The GraphQL endpoint of one emulator instance."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        config = emulator.config
        from .resolvers import attach_resolvers  # late: resolvers import this package's rules

        self.schema = attach_resolvers()
        self.documents = DocumentCache(self.schema, max_depth=config.max_depth,
                                       max_root_fields=config.max_root_fields)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["method"] == "GET":
            await self._send(send, 200, [_TEXT], b"Trackdechets emulator: POST GraphQL queries to /\n")
            return
        emu = self.emulator
        faults = emu.faults
        entry: dict[str, Any] = {"at": time.time(), "operations": [], "status": 0}
        emu.journal.append(entry)
        status = self._outage_status()
        if status is None and faults.error_probability and emu.rng.random() < faults.error_probability:
            status = emu.rng.choice(faults.error_statuses)
        if status is not None:
            entry["status"] = status
            await self._send(send, status, [_TEXT], b"<html><body>Bad gateway</body></html>")
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        allowed, remaining, reset = emu.hit_rate_limit(client)
        headers: Headers = [(b"x-ratelimit-limit", str(emu.config.rate_limit).encode()),
                            (b"x-ratelimit-remaining", str(remaining).encode()),
                            (b"x-ratelimit-reset", str(reset).encode())]
        if faults.force_429_count > 0:
            faults.force_429_count -= 1
            allowed = False
        if not allowed:
            entry["status"] = 429
            retry_after = str(max(1, int(reset - time.time()))).encode()
            message = (f"Quota de {emu.config.rate_limit} requêtes par 1 minute(s) excédé pour cette "
                       "adresse IP, merci de réessayer plus tard.").encode()
            await self._send(send, 429, [*headers, _TEXT, (b"retry-after", retry_after)], message)
            return
        status, body = await self._handle(scope, receive, entry)
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        entry["status"] = status
        if entry.get("dropped"):
            await self._drop(scope, send)
            return
        await self._send(send, status, [*headers, _JSON], body)

    def _outage_status(self) -> int | None:
        elapsed = time.monotonic() - self.emulator.started_at
        for window in self.emulator.faults.outages:
            if window.start_seconds <= elapsed < window.end_seconds:
                return window.status
        return None

    async def _handle(self, scope: dict[str, Any], receive: Any, entry: dict[str, Any]) -> tuple[int, bytes]:
        raw = await self._read_body(receive)
        if raw is None:
            return 413, _dump({"error": "Payload too large"})
        try:
            payload = json.loads(raw)
        except ValueError:
            return 400, _dump({"error": "JSON mal formaté ou invalide"})
        user = self.emulator.registry.user_for(_bearer(scope))
        if isinstance(payload, list):
            entry["batch"] = True
            if len(payload) > self.emulator.config.max_batch_operations:
                limit = self.emulator.config.max_batch_operations
                return 400, _dump({"error": f"Batching is limited to {limit} operations per request."})
            results = [self._run_one(item, user, entry) for item in payload]
            statuses = [s for s, _ in results if s != 200]
            return (statuses[-1] if statuses else 200), b"[" + b",".join(b for _, b in results) + b"]"
        return self._run_one(payload, user, entry)

    async def _read_body(self, receive: Any) -> bytes | None:
        limit = self.emulator.config.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    def _run_one(self, item: Any, user: Any, entry: dict[str, Any]) -> tuple[int, bytes]:
        if not isinstance(item, dict) or not isinstance(item.get("query"), str):
            return 400, _dump({"errors": [{"message": "GraphQL operations must contain a non-empty `query`.",
                                           "extensions": {"code": "BAD_REQUEST"}}]})
        checked = self.documents.get(item["query"])
        record = {"operationName": item.get("operationName"), "fields": list(checked.root_names),
                  "root_fields": checked.root_fields}
        entry["operations"].append(record)
        if checked.document is None:
            errors = [{**error.formatted, "extensions": {"code": checked.code}} for error in checked.errors]
            return _STATUS_CODES.get(checked.code or "", 400), _dump({"errors": errors})
        variables = item.get("variables")
        if isinstance(variables, str):
            try:
                variables = json.loads(variables)
            except ValueError:
                return 400, _dump({"error": "JSON mal formaté ou invalide"})
        result = self._execute(checked, variables, item.get("operationName"), user)
        if checked.mutation and self._dice_drop():
            entry["dropped"] = True
        return self._result_body(result)

    def _execute(self, checked: CheckedDocument, variables: Any, operation_name: str | None,
                 user: Any) -> ExecutionResult:
        context = {"emulator": self.emulator, "user": user}
        with self.emulator.store.lock:
            result = execute(self.schema, checked.document,  # type: ignore[arg-type]
                             context_value=context, variable_values=variables, operation_name=operation_name)
        assert isinstance(result, ExecutionResult)
        return result

    def _dice_drop(self) -> bool:
        probability = self.emulator.faults.drop_after_commit_probability
        return bool(probability) and self.emulator.rng.random() < probability

    @staticmethod
    def _result_body(result: ExecutionResult) -> tuple[int, bytes]:
        payload: dict[str, Any] = {}
        status = 200
        if result.errors:
            if result.data is None and all(error.path is None for error in result.errors):
                # Request-level errors (variable coercion...): no field ran, HTTP 400 like Apollo.
                status = 400
                payload["errors"] = [{**e.formatted, "extensions": {"code": "BAD_USER_INPUT"}}
                                     for e in result.errors]
                return status, _dump(payload)
            payload["errors"] = [_format_error(error) for error in result.errors]
        payload["data"] = result.data
        return status, _dump(payload)

    @staticmethod
    async def _send(send: Any, status: int, headers: Headers, body: bytes) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _drop(scope: dict[str, Any], send: Any) -> None:
        """Close the client connection without a byte of answer (uvicorn's transport)."""
        raw_send = scope.get("emulator.raw_send", send)
        cycle = getattr(raw_send, "__self__", None)
        transport = getattr(cycle, "transport", None)
        if transport is None:
            raise _DroppedError("connection dropped after commit (fault injection)")
        transport.close()
        cycle.disconnected = True  # type: ignore[union-attr]
        await asyncio.sleep(0)


def _bearer(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            text: str = value.decode("latin-1").strip()
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None
