"""The local HTTP servers (/metrics, /healthz, webhooks) against clients that do not play fair.

Real loopback sockets only; every flood is bounded in count and time.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connector.domain.demo_companies import DEMO_TOKEN
from connector.errors import ConfigError
from connector.health import HealthCheck, StepStatus
from connector.local_http import BackgroundHTTPServer, is_loopback
from connector.metrics import ConnectorMetrics, MetricsServer
from connector.webhooks import WebhookReceiver

SECRET = "a-webhook-secret-of-32-characters!"
FLOOD = 600


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def wait_for(predicate: object, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def metrics_server() -> Iterator[MetricsServer]:
    status = StepStatus()
    status.register("push", 5)
    metrics = ConnectorMetrics(records_by_state=lambda: {"pending": 1}, rate_budget=lambda: 1, status=status)
    with MetricsServer("127.0.0.1", 0, metrics.registry, HealthCheck(status, 3.0)) as srv:
        yield srv


def raw(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_healthz_answers_under_a_flood_of_idle_connections_and_descriptors_come_back(
    metrics_server: MetricsServer,
) -> None:
    server = metrics_server._server
    baseline = open_fds()
    threads = threading.active_count()
    flood: list[socket.socket] = []
    try:
        for _ in range(FLOOD):  # connect and say nothing: each used to pin a thread and a descriptor
            flood.append(socket.create_connection(("127.0.0.1", metrics_server.port), timeout=2))
        assert wait_for(lambda: server.open_connections >= server.max_connections, 5)
        # The server keeps at most max_connections of them, whatever the flood, and no thread each.
        assert server.open_connections <= server.max_connections
        assert open_fds() <= baseline + FLOOD + server.max_connections + 8
        assert threading.active_count() <= threads + server.workers + 2
        started = time.monotonic()
        response = httpx.get(f"{metrics_server.url}/healthz", timeout=2.0)
        assert response.status_code == 200
        assert time.monotonic() - started < 2.0
        assert response.json()["status"] == "ok"
    finally:
        for sock in flood:
            sock.close()
    assert wait_for(lambda: server.open_connections == 0, 5)
    assert wait_for(lambda: open_fds() <= baseline + 1, 5), (open_fds(), baseline)
    for _ in range(50):  # served requests give their descriptors back too
        assert httpx.get(f"{metrics_server.url}/metrics", timeout=2.0).status_code == 200
    assert wait_for(lambda: open_fds() <= baseline + 1, 5), (open_fds(), baseline)


def test_idle_and_slow_clients_are_timed_out(metrics_server: MetricsServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    server = metrics_server._server
    monkeypatch.setattr(server, "head_timeout", 0.3)
    with socket.create_connection(("127.0.0.1", metrics_server.port), timeout=3) as sock:
        sock.sendall(b"GET /metr")  # a head that never completes
        started = time.monotonic()
        answer = sock.recv(1024)
    assert answer.startswith(b"HTTP/1.0 408")
    assert time.monotonic() - started < 2.5
    assert wait_for(lambda: server.open_connections == 0, 2)


def test_oversized_head_is_refused(metrics_server: MetricsServer) -> None:
    try:
        answer = raw(metrics_server.port, b"GET /metrics HTTP/1.1\r\nX-Fill: " + b"a" * 40_000 + b"\r\n\r\n")
    except ConnectionResetError:  # closed while the client was still sending: refused all the same
        answer = b"HTTP/1.0 431 (reset before the client read it)"
    assert answer.startswith(b"HTTP/1.0 431")
    assert wait_for(lambda: metrics_server._server.open_connections == 0, 2)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[WebhookReceiver]:
    recorded: list[list[tuple[str, str]]] = []
    hooks = WebhookReceiver(lambda: None, host="127.0.0.1", port=0,  # type: ignore[arg-type,return-value]
                            path="/hooks", token=SECRET)
    hooks.record = recorded.append  # type: ignore[method-assign]
    hooks.recorded = recorded  # type: ignore[attr-defined]
    hooks.start()
    yield hooks
    hooks.stop()


def post(port: int, length_headers: bytes, body: bytes = b"") -> bytes:
    head = (b"POST /hooks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer: " + SECRET.encode() + b"\r\n"
            + length_headers + b"\r\n")
    return raw(port, head + body)


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        (b"Content-Length: -1\r\n", b"[]", b"400"),
        (b"Content-Length: abc\r\n", b"[]", b"400"),
        (b"Content-Length: 1e3\r\n", b"[]", b"400"),
        (b"Content-Length: +2\r\n", b"[]", b"400"),
        (b"Content-Length: 2\r\nContent-Length: 3\r\n", b"[]", b"400"),
        (b"Content-Length: 99999999999999999999999\r\n", b"[]", b"400"),
        (b"Content-Length: 5000000\r\n", b"[]", b"413"),
        (b"Transfer-Encoding: chunked\r\n", b"2\r\n[]\r\n0\r\n\r\n", b"411"),
        (b"", b"", b"411"),
        (b"Content-Length: 10\r\n", b"[]", b"400"),  # shorter than announced: timed out, then 400
        (b"Content-Length: 2\r\n", b"[]", b"200"),
    ],
)
def test_content_length_is_strict(receiver: WebhookReceiver, headers: bytes, body: bytes, status: bytes,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(receiver._server, "read_timeout", 0.3)
    if headers == b"Content-Length: 10\r\n":
        with socket.create_connection(("127.0.0.1", receiver.port), timeout=3) as sock:
            sock.sendall(b"POST /hooks HTTP/1.1\r\nAuthorization: Bearer " + SECRET.encode() + b"\r\n"
                         + headers + b"\r\n" + body)
            sock.shutdown(socket.SHUT_WR)  # the client stops sending: the body is short
            answer = sock.recv(4096)
    else:
        answer = post(receiver.port, headers, body)
    assert answer.split(b" ", 2)[1] == status, answer
    assert b"Traceback" not in answer


def test_handler_bug_is_a_500_without_traceback(receiver: WebhookReceiver) -> None:
    def broken(hints: list[tuple[str, str]]) -> None:
        raise RuntimeError("bug in the receiver, token " + SECRET)

    receiver.record = broken  # type: ignore[method-assign]
    body = b'[{"id": "BSD-1", "action": "UPDATED"}]'
    answer = post(receiver.port, b"Content-Length: %d\r\n" % len(body), body)
    assert answer.split(b" ", 2)[1] == b"500", answer
    assert b"Traceback" not in answer
    assert b"bug in the receiver" not in answer
    assert SECRET.encode() not in answer


@pytest.mark.parametrize("body", [
    b'[{"id": "' + b"x" * 5000 + b'", "action": "UPDATED"}]',
    b'[{"id": "BSD-1\\u0000", "action": "UPDATED"}]',
    b'{"id": "BSD-1"}',
    b"[" + b",".join([b'{"id": "BSD-1"}'] * 501) + b"]",
])
def test_webhook_events_must_look_like_the_platform_s(receiver: WebhookReceiver, body: bytes) -> None:
    answer = post(receiver.port, b"Content-Length: %d\r\n" % len(body), body)
    assert answer.split(b" ", 2)[1] == b"400"
    assert receiver.recorded == []  # type: ignore[attr-defined]


def test_binding_beyond_loopback_warns_naming_what_is_exposed(capsys: pytest.CaptureFixture[str]) -> None:
    from connector.logs import configure_logging

    configure_logging("INFO", "json", stream=sys.stderr)
    status = StepStatus()
    metrics = ConnectorMetrics(records_by_state=dict, rate_budget=lambda: 1, status=status)
    with MetricsServer("0.0.0.0", 0, metrics.registry):
        pass
    err = capsys.readouterr().err
    assert "http_exposed_beyond_loopback" in err
    assert "/metrics and /healthz" in err
    assert "metrics.host" in err
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("192.168.1.10")


@pytest.mark.slow  # ~15 s: a real daemon process starts against the emulator
@pytest.mark.parametrize("section", ["metrics", "webhooks"])
def test_busy_port_ends_the_daemon_with_exit_78_and_a_clear_line(tmp_path: Path, section: str) -> None:
    from connector.demo.run import _prepare
    from td_emulator.testing import serve_in_thread

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        with serve_in_thread() as emulator:
            config = _prepare(tmp_path, emulator.url)
            extra = f"token = \"{SECRET}\"\n" if section == "webhooks" else ""
            with config.open("a", encoding="utf-8") as fh:
                fh.write(f"[{section}]\nenabled = true\nport = {port}\n{extra}")
            env = {k: v for k, v in os.environ.items() if not k.startswith("TDC_")}
            env["TDC_TRACKDECHETS__TOKEN"] = DEMO_TOKEN
            done = subprocess.run([sys.executable, "-m", "connector", "run", "--config", str(config)],
                                  cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
                                  check=False)
    finally:
        holder.close()
    assert done.returncode == 78, done.stdout + done.stderr
    assert f"{section}.port: {port} on 127.0.0.1 is already in use by pid {os.getpid()}" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_base_server_without_safe_handler_still_reads_the_buffered_head() -> None:
    from http.server import BaseHTTPRequestHandler

    class Plain(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = BackgroundHTTPServer("127.0.0.1", 0, Plain)
    server.start("plain")
    try:
        assert httpx.get(server.base_url + "/x", timeout=2).status_code == 204
    finally:
        server.stop()
    with pytest.raises(ConfigError):
        BackgroundHTTPServer("203.0.113.1", 0, Plain).start("unroutable")  # not an address of ours
    six = BackgroundHTTPServer("::1", 0, Plain)
    try:
        six.start("ipv6")
    except ConfigError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert httpx.get(six.base_url + "/x", timeout=2).status_code == 204
    finally:
        six.stop()


def test_emulator_server_runs_with_limits_and_warns_beyond_loopback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import uvicorn

    from td_emulator import server as emulator_server

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs))
    emulator_server.run("127.0.0.1", 7300)
    assert seen["timeout_keep_alive"] == 5
    assert seen["limit_concurrency"] == 200
    assert seen["h11_max_incomplete_event_size"] == 16_384
    assert "beyond loopback" not in caplog.text
    emulator_server.run("0.0.0.0", 7300)
    assert "beyond loopback" in caplog.text
