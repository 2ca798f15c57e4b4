"""A small HTTP server on a background thread: what ``/metrics`` and the webhook receiver share.

Anyone who can reach the port can connect, so the server defends itself:

* **Idle and slow clients cost a descriptor, never a thread.** One loop accepts connections and
  buffers each request head until it is complete (``\\r\\n\\r\\n``); only complete requests reach
  the small worker pool. A head must arrive within :attr:`BackgroundHTTPServer.head_timeout`
  and fit in :attr:`~BackgroundHTTPServer.max_head_bytes`; a body is read with a per-read
  :attr:`~BackgroundHTTPServer.read_timeout`.
* **A bounded number of connections.** Beyond :attr:`~BackgroundHTTPServer.max_connections` the
  oldest connection still waiting for its head is closed to make room, so a flood of idle
  connections cannot keep ``/healthz`` from answering, nor exhaust the process's descriptors.
* **Strict bodies.** :func:`read_body` accepts one decimal ``Content-Length`` within a limit
  (400 / 411 / 413 otherwise); chunked bodies are refused.
* **No traceback to the client**: an error in a handler is a 500 and one log line.
* **Loopback by default**; binding elsewhere logs a warning naming what is exposed. A port that
  is taken is a :class:`~connector.errors.ConfigError` naming the setting and, when it can be
  found, the process holding the port.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import selectors
import socket
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import structlog

from connector.errors import ConfigError
from connector.hosts import is_loopback
from connector.logs import redact

__all__ = ["BackgroundHTTPServer", "SafeHandler", "is_loopback", "port_holder", "read_body", "send"]

log = structlog.get_logger("connector.local_http")

_DIGITS = re.compile(r"[0-9]{1,18}")


class _Prefixed(io.RawIOBase):
    """The bytes the accept loop already read from the socket, then the socket itself."""

    def __init__(self, prefix: bytes, sock: socket.socket) -> None:
        self._prefix = memoryview(prefix)
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        return self._sock.recv_into(buffer)


class SafeHandler(BaseHTTPRequestHandler):
    """Base of the connector's handlers: reads the head the server buffered, never leaks a traceback."""

    server: BackgroundHTTPServer
    server_version = "td-connector"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.read_timeout)
        prefix = self.server._take_prefix(self.connection)
        self.rfile.close()  # the plain socket reader would miss the head already read
        self.rfile = io.BufferedReader(_Prefixed(prefix, self.connection))

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (TimeoutError, ConnectionError):
            self.close_connection = True
        except Exception as exc:  # a bug must not reach the client as a traceback
            self.close_connection = True
            log.error("http_handler_failed", path=redact(getattr(self, "path", "?"), 200),
                      error=f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(OSError):
                send(self, 500, "text/plain; charset=utf-8", b"internal error\n")


class BackgroundHTTPServer(HTTPServer):
    """Bound only by :meth:`start`, so a taken port is reported there, as a configuration error."""

    setting = "http"
    """Settings section whose ``host``/``port`` this server uses (named in errors)."""
    exposes = "an HTTP endpoint"
    """What a client reaching the port gets, for the warning when bound beyond loopback."""
    max_connections = 128
    request_queue_size = 128
    """Listen backlog: connections the kernel completes before the loop accepts them."""
    workers = 4
    head_timeout = 10.0
    read_timeout = 5.0
    max_head_bytes = 16_384

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        if not issubclass(handler, SafeHandler):  # the head is read by the loop: the handler must know
            handler = type(handler.__name__, (SafeHandler, handler), {})
        if ":" in host:  # an IPv6 address such as ::1
            self.address_family = socket.AF_INET6
        super().__init__((host.strip("[]"), port), handler, bind_and_activate=False)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._waiting: OrderedDict[socket.socket, tuple[float, bytearray]] = OrderedDict()
        self._ready: dict[socket.socket, bytes] = {}
        self._serving = 0

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self.server_address[1])

    @property
    def base_url(self) -> str:
        host = self.server_address[0]
        name = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://[{name}]:{self.port}" if ":" in name else f"http://{name}:{self.port}"

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._waiting) + self._serving

    def start(self, thread_name: str) -> None:
        host = str(self.server_address[0])
        try:
            self.server_bind()
            self.server_activate()
        except OSError as exc:
            self.server_close()
            raise _bind_error(self.setting, host, int(self.server_address[1]), exc) from None
        self.socket.setblocking(False)
        if not is_loopback(host):
            log.warning("http_exposed_beyond_loopback", setting=f"{self.setting}.host", address=host,
                        port=self.port, exposes=self.exposes)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix=f"{thread_name}-worker")
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(5)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        with self._lock:
            for sock in list(self._waiting) + list(self._ready):
                _close(sock)
            self._waiting.clear()
            self._ready.clear()
        self.server_close()

    # --- the accept loop --------------------------------------------------------------------

    def _loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            while not self._stop.is_set():
                try:
                    for key, _ in selector.select(timeout=0.1):
                        sock = key.fileobj
                        assert isinstance(sock, socket.socket)
                        if sock is self.socket:
                            self._accept(selector)
                        else:
                            self._receive(selector, sock)
                    self._expire(selector)
                except Exception as exc:  # the loop must outlive any one connection's surprise
                    log.error("http_loop_error", setting=self.setting, error=f"{type(exc).__name__}: {exc}")
                    time.sleep(0.1)
            for sock in list(self._waiting):
                selector.unregister(sock)

    def _accept(self, selector: selectors.BaseSelector) -> None:
        for _ in range(64):  # drain the backlog in bursts, yet keep serving the waiting ones
            try:
                sock, _address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE: out of descriptors; the oldest waiting one goes
                log.warning("http_accept_failed", setting=self.setting, error=str(exc))
                self._evict_oldest(selector)
                return
            with self._lock:
                full = len(self._waiting) + self._serving >= self.max_connections
            if full and not self._evict_oldest(selector):
                _close(sock)  # every slot is serving a complete request: come back later
                continue
            sock.setblocking(False)
            with self._lock:
                self._waiting[sock] = (time.monotonic(), bytearray())
            selector.register(sock, selectors.EVENT_READ)

    def _evict_oldest(self, selector: selectors.BaseSelector) -> bool:
        with self._lock:
            if not self._waiting:
                return False
            sock, _ = self._waiting.popitem(last=False)
        selector.unregister(sock)
        _close(sock)
        return True

    def _receive(self, selector: selectors.BaseSelector, sock: socket.socket) -> None:
        with self._lock:
            entry = self._waiting.get(sock)
        if entry is None:
            return
        try:
            data = sock.recv(self.max_head_bytes)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._drop(selector, sock)
            return
        head = entry[1]
        head += data
        if b"\r\n\r\n" in head or b"\n\n" in head:
            self._drop(selector, sock, close=False)
            sock.setblocking(True)
            with self._lock:
                self._ready[sock] = bytes(head)
                self._serving += 1
            assert self._pool is not None
            self._pool.submit(self._serve, sock)
        elif len(head) > self.max_head_bytes:
            self._drop(selector, sock, answer=b"HTTP/1.0 431 Request Header Fields Too Large\r\n"
                                             b"Content-Length: 0\r\nConnection: close\r\n\r\n")

    def _expire(self, selector: selectors.BaseSelector) -> None:
        deadline = time.monotonic() - self.head_timeout
        while True:
            with self._lock:
                oldest = next(iter(self._waiting.items()), None)
            if oldest is None or oldest[1][0] > deadline:
                return
            self._drop(selector, oldest[0], answer=b"HTTP/1.0 408 Request Timeout\r\n"
                                                   b"Content-Length: 0\r\nConnection: close\r\n\r\n")

    def _drop(self, selector: selectors.BaseSelector, sock: socket.socket, *, close: bool = True,
              answer: bytes | None = None) -> None:
        with self._lock:
            self._waiting.pop(sock, None)
        selector.unregister(sock)
        if answer is not None:
            with contextlib.suppress(OSError):
                sock.send(answer)
        if close:
            _close(sock)

    def _serve(self, sock: socket.socket) -> None:
        try:
            self.finish_request(sock, sock.getpeername())
        except Exception as exc:  # the handler answers its own errors; this is the socket failing
            log.debug("http_connection_failed", setting=self.setting, error=str(exc))
        finally:
            with self._lock:
                self._ready.pop(sock, None)
                self._serving -= 1
            self.shutdown_request(sock)

    def _take_prefix(self, sock: socket.socket) -> bytes:
        with self._lock:
            return self._ready.get(sock, b"")


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


def _bind_error(setting: str, host: str, port: int, exc: OSError) -> ConfigError:
    if isinstance(exc, OSError) and exc.errno in (98, 48):  # EADDRINUSE (Linux, BSD)
        holder = port_holder(port)
        by = f" by {holder}" if holder else " by another process"
        return ConfigError(
            f"{setting}.port: {port} on {host} is already in use{by}; stop it or choose another "
            f"{setting}.port (0 picks a free one)"
        )
    reason = exc.strerror or str(exc)
    return ConfigError(f"{setting}.host/{setting}.port: cannot listen on {host}:{port} ({reason})")


def port_holder(port: int) -> str | None:
    """``pid 1234 (name)`` of the process listening on TCP ``port``, when /proc tells (same user)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    if not inodes:
        return None
    wanted = {f"socket:[{i}]" for i in inodes}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in wanted for fd in fds):
                name = Path(f"/proc/{pid}/comm").read_text().strip()
                return f"pid {pid} ({name})"
        except OSError:
            continue
    return None


def read_body(handler: BaseHTTPRequestHandler, limit: int) -> bytes | None:
    """The request body, or None after answering 400/411/413 (the connection is then closed).

    One ``Content-Length`` of decimal digits only, at most ``limit``; ``Transfer-Encoding`` is
    refused (no client of ours sends chunked bodies). Never reads more than the length given.
    """
    lengths = handler.headers.get_all("Content-Length") or []
    handler.close_connection = True
    if handler.headers.get("Transfer-Encoding"):
        send(handler, 411, "text/plain; charset=utf-8", b"chunked bodies are not accepted\n")
        return None
    if not lengths:
        send(handler, 411, "text/plain; charset=utf-8", b"Content-Length required\n")
        return None
    value = lengths[0].strip()
    if len(lengths) > 1 or not _DIGITS.fullmatch(value):
        send(handler, 400, "text/plain; charset=utf-8", b"invalid Content-Length\n")
        return None
    length = int(value)
    if length > limit:
        send(handler, 413, "text/plain; charset=utf-8", f"body above {limit} bytes\n".encode())
        return None
    body = handler.rfile.read(length)
    if len(body) != length:
        send(handler, 400, "text/plain; charset=utf-8", b"body shorter than Content-Length\n")
        return None
    return body


def send(handler: BaseHTTPRequestHandler, status: int, content_type: str, body: bytes) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    if handler.close_connection:
        handler.send_header("Connection", "close")
    handler.end_headers()
    handler.wfile.write(body)
