"""``td-connector check``: configuration, mappings, every source opened, then the API, once.

Each line starts with ``ok``, ``warn`` or ``FAIL`` and says what to do. The API is tried once with
a short timeout, not through the daemon's retries, and a failure is named by how far the request
got: DNS, connection refused, TLS, timeout, an HTTP status, or the token refused (with where the
token came from).
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from connector import __version__
from connector.errors import ConnectorError
from connector.failures import token_origin
from connector.runtime import build_client, build_runtime, token_of
from connector.settings import Settings
from connector.sources.base import CheckFinding, SourceCheck

__all__ = ["api_finding", "check"]

PROBE_TIMEOUT_SECONDS = 10.0
_ME = "query Me { me { email } }"


def _print(finding: CheckFinding) -> None:
    label = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}[finding.level]
    print(f"{label}  {finding.message}")


def check(settings: Settings, config_dir: Path, *, offline: bool = False) -> int:
    """0 when nothing failed (warnings allowed), 1 otherwise; configuration errors raise (78)."""
    if not offline:
        build_client(settings).close()  # no token at all is a configuration error (78), as for run
    runtime = build_runtime(settings, config_dir, offline=True)
    failed = False
    try:
        _print(CheckFinding("ok", f"configuration: {len(runtime.pipeline.bindings)} mapping(s)"))
        for binding in runtime.pipeline.bindings:
            mapping = binding.mapping
            prefix = f"mapping {mapping.name} ({mapping.kind.name.value}, {Path(mapping.path).name})"
            for finding in _source_findings(binding.source, binding.mapping):
                failed |= finding.level == "fail"
                _print(CheckFinding(finding.level, f"{prefix}: {finding.message}"))
    finally:
        runtime.close()
    if not offline:
        finding = api_finding(settings)
        failed |= finding.level == "fail"
        _print(finding)
    return 1 if failed else 0


def _source_findings(source: object, mapping: object) -> Iterator[CheckFinding]:
    opener = getattr(source, "check", None)
    if opener is None:
        return
    try:
        result: SourceCheck = opener()
    except ConnectorError as exc:
        yield CheckFinding("fail", f"{exc}: is the database up and reachable, and source.url right?")
        return
    yield from result.findings
    if result.columns is None:
        return
    problems = mapping.check_columns(result.columns)  # type: ignore[attr-defined]
    for problem in problems:
        yield CheckFinding("fail", f"{problem} ({result.where})")
    if not problems and result.where:
        yield CheckFinding("ok", f"every column the mapping reads is in the {result.where}")


def api_finding(settings: Settings) -> CheckFinding:
    """One request to the API (``me``), its outcome in one line."""
    td = settings.trackdechets
    token = token_of(settings) or ""
    origin = token_origin(td.token_file)
    parts = urlsplit(td.url)
    host = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    timeout = min(td.timeout_seconds, PROBE_TIMEOUT_SECONDS)
    try:
        response = httpx.post(
            td.url,
            content=json.dumps({"query": _ME, "operationName": "Me"}).encode(),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "User-Agent": f"trackdechets-connector/{__version__} (check)",
            },
            timeout=timeout,
        )
    except httpx.TimeoutException:
        return CheckFinding("fail", f"trackdechets {td.url}: no answer within {timeout:g} s from {host}: "
                                    "is the server up, or a firewall dropping the traffic?")
    except httpx.TransportError as exc:
        return CheckFinding("fail", f"trackdechets {td.url}: {_transport_cause(exc, host)}")
    if response.status_code in (401, 403) or _unauthenticated(response):
        return CheckFinding("fail", f"trackdechets {td.url}: the token from {origin} was refused "
                                    f"({_refusal(response)}): put a valid token there")
    if response.status_code != 200:
        return CheckFinding("fail", f"trackdechets {td.url}: HTTP {response.status_code} "
                                    f"{response.reason_phrase}: {response.text.strip()[:200]!r}: is "
                                    "trackdechets.url the GraphQL endpoint?")
    try:
        email = response.json()["data"]["me"]["email"]
    except (ValueError, KeyError, TypeError):
        return CheckFinding("fail", f"trackdechets {td.url}: the answer is not Trackdéchets' GraphQL "
                                    f"({response.text.strip()[:120]!r}): is trackdechets.url right?")
    return CheckFinding("ok", f"trackdechets {td.url}: token of {email} (from {origin})")


def _refusal(response: httpx.Response) -> str:
    return "UNAUTHENTICATED" if response.status_code == 200 else f"HTTP {response.status_code}"


def _unauthenticated(response: httpx.Response) -> bool:
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        return False
    return any((e.get("extensions") or {}).get("code") == "UNAUTHENTICATED" for e in errors
               if isinstance(e, dict))


def _transport_cause(exc: httpx.TransportError, host: str) -> str:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    if any(isinstance(c, socket.gaierror) for c in chain) or "Name or service not known" in str(exc):
        name = host.rsplit(":", 1)[0]
        return f"DNS: the name {name} cannot be resolved: check the URL's host and the DNS"
    if any(isinstance(c, ConnectionRefusedError) for c in chain):
        return (f"connection refused by {host}: nothing listens there; check the URL's port, or "
                "start the server")
    if any(isinstance(c, ssl.SSLError) for c in chain) or "SSL" in str(exc):
        return (f"TLS with {host} failed ({exc}): is it really https on that port, and is the "
                "certificate trusted (SSL_CERT_FILE)?")
    return f"{type(exc).__name__} talking to {host}: {exc}"
