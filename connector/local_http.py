"""A small HTTP server on a background thread: what ``/metrics`` and the webhook receiver share."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["BackgroundHTTPServer", "send"]


class BackgroundHTTPServer(ThreadingHTTPServer):
    """Bound only by :meth:`start`, so a taken port is an ``OSError`` there, where callers report it."""

    daemon_threads = True

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__((host, port), handler, bind_and_activate=False)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self.server_address[1])

    @property
    def base_url(self) -> str:
        host = self.server_address[0]
        name = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{name}:{self.port}"

    def start(self, thread_name: str) -> None:
        self.server_bind()
        self.server_activate()
        # A short poll interval keeps stop() quick; the loop is idle between requests anyway.
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() would wait forever on a loop that never ran
            self.shutdown()
            self._thread.join(5)
            self._thread = None
        self.server_close()


def send(handler: BaseHTTPRequestHandler, status: int, content_type: str, body: bytes) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
