"""Receiver of Trackdéchets webhooks: "this BSD changed", acknowledged at once, read back later.

The platform posts ``[{"action": "CREATED"|"UPDATED"|"DELETED", "id": "<readable id>"}]`` with the
header ``Authorization: Bearer: <token>`` (colon included) and gives up after 5 s, so the receiver
only records the ids as track hints in the state store and answers; the track step reads those
BSDs back, five to a request. The ``updatedAfter`` walks go on regardless: a webhook can be lost.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy import select

from connector.local_http import BackgroundHTTPServer, SafeHandler, read_body, send
from connector.state.models import TrackHint
from connector.state.store import StateStore, utcnow

__all__ = ["WebhookReceiver", "parse_authorization"]

log = structlog.get_logger("connector.webhooks")

_MAX_BODY = 1_000_000
_MAX_EVENTS = 500
"""Events per call; the platform sends one per change, so more is not a webhook."""
_ACTIONS = frozenset({"CREATED", "UPDATED", "DELETED"})


def _bsd_id(value: object) -> str:
    """A readable id as the platform sends it: short printable text, else the event is refused."""
    if not isinstance(value, str) or not 0 < len(value) <= 100 or not value.isprintable():
        raise ValueError("not a BSD id")
    return value


def parse_authorization(header: str | None) -> str | None:
    """The token of ``Bearer: <token>`` (the platform's spelling) or ``Bearer <token>``."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    if scheme.rstrip(":").lower() != "bearer":
        return None
    return rest.strip() or None


class _Handler(SafeHandler):
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        receiver = self.server.receiver
        if self.path.split("?", 1)[0] != receiver.path:
            self._answer(404, {"error": "not found"})
            return
        given = parse_authorization(self.headers.get("Authorization"))
        if given is None or not hmac.compare_digest(given.encode(), receiver.token.encode()):
            log.warning("webhook_refused", reason="bad or missing token", client=self.client_address[0])
            self._answer(401, {"error": "unauthorized"})
            return
        body = read_body(self, _MAX_BODY)
        if body is None:
            return
        try:
            events = json.loads(body)
            if not isinstance(events, list) or len(events) > _MAX_EVENTS:
                raise ValueError("not a list of at most _MAX_EVENTS events")
            hints = [(_bsd_id(e["id"]), str(e.get("action", "UPDATED"))) for e in events]
        except (ValueError, TypeError, KeyError):
            self._answer(400, {"error": f'expected [{{"action": ..., "id": ...}}], at most {_MAX_EVENTS}'})
            return
        receiver.record(hints)
        self._answer(200, {"received": len(hints)})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        send(self, status, "application/json", json.dumps(body).encode())

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are logged by the receiver itself, as structured lines."""


class _Server(BackgroundHTTPServer):
    setting = "webhooks"
    exposes = ("the webhook receiver (authenticated by webhooks.token; a valid call only makes the "
               "daemon read back BSDs it can already read)")
    receiver: WebhookReceiver


class WebhookReceiver:
    """An HTTP endpoint that turns webhooks into track hints (and wakes the track step up)."""

    def __init__(
        self,
        store: Callable[[], StateStore],
        *,
        host: str,
        port: int,
        path: str,
        token: str,
        on_hint: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        """Returns the current state store (it changes when the daemon reloads)."""
        self.path = path
        self.token = token
        self.on_hint = on_hint
        self._server = _Server(host, port, _Handler)
        self._server.receiver = self

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return self._server.base_url + self.path

    def record(self, hints: list[tuple[str, str]]) -> None:
        if not hints:
            return
        now = utcnow()
        with self.store().session() as session:
            known = {
                h.bsd_id: h
                for h in session.scalars(select(TrackHint).where(TrackHint.bsd_id.in_([i for i, _ in hints])))
            }
            for bsd_id, action in hints:
                action = action if action in _ACTIONS else "UPDATED"
                if bsd_id in known:
                    known[bsd_id].action, known[bsd_id].received_at = action, now
                else:
                    known[bsd_id] = TrackHint(bsd_id=bsd_id, action=action, received_at=now)
                    session.add(known[bsd_id])
        log.info("webhook_received", ids=[i for i, _ in hints][:20], count=len(hints))
        if self.on_hint is not None:
            self.on_hint()

    def start(self) -> WebhookReceiver:
        self._server.start("webhooks")
        log.info("webhook_receiver_started", url=self.url)
        return self

    def stop(self) -> None:
        self._server.stop()
