"""Outgoing webhooks, delivered like the platform's: one element per event, ``Bearer:`` header.

Delivery runs on its own thread so a slow receiver never slows the GraphQL answers, exactly as
the platform queues them. Failures are counted per (company, endpoint) in a rolling window; one
more failure once the count reached the threshold deactivates the setting.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import structlog

from .config import WebhookConfig
from .store import Store

__all__ = ["WebhookDispatcher"]

log = structlog.get_logger("td_emulator.webhooks")


class WebhookDispatcher:
    """Queue of (setting, payload) deliveries drained by one daemon thread."""

    def __init__(self, store: Store, config: WebhookConfig) -> None:
        self.store = store
        self.config = config
        self.deliveries: list[dict[str, Any]] = []
        """What was attempted: endpoint, payload, outcome (tests read it)."""
        self._failures: dict[tuple[str, str], tuple[int, float]] = {}
        self._queue: queue.Queue[tuple[str, list[dict[str, str]]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._client: httpx.Client | None = None
        self._idle = threading.Event()
        self._idle.set()

    def start(self) -> None:
        if self._thread is None and self.config.enabled:
            self._client = httpx.Client(timeout=self.config.timeout_seconds)
            self._thread = threading.Thread(target=self._run, name="emulator-webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=self.config.timeout_seconds * self.config.attempts + 5)
            self._thread = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def notify(self, org_ids: set[str], action: str, bsd_id: str) -> None:
        """Queue one event for every active setting of a company named on the BSD."""
        if self._thread is None:
            return
        for setting in list(self.store.webhooks.values()):
            if setting["activated"] and setting["orgId"] in org_ids:
                self._idle.clear()
                self._queue.put((setting["id"], [{"action": action, "id": bsd_id}]))

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every queued delivery has been tried (tests use it instead of sleeping)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.01)
        return False

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._deliver(*item)
            finally:
                self._queue.task_done()

    def _deliver(self, setting_id: str, payload: list[dict[str, str]]) -> None:
        for attempt in range(1, self.config.attempts + 1):
            setting = self.store.webhooks.get(setting_id)
            if setting is None or not setting["activated"]:
                return
            outcome = self._post(setting, payload)
            self.deliveries.append({"endpointUri": setting["endpointUri"], "payload": payload,
                                    "attempt": attempt, "outcome": outcome})
            if outcome == "ok":
                return
            self._count_failure(setting)
            if attempt < self.config.attempts:
                time.sleep(self.config.backoff_seconds)

    def _post(self, setting: dict[str, Any], payload: list[dict[str, str]]) -> str:
        assert self._client is not None
        # The platform sends "Bearer: <token>" with a colon; clients must accept it as is.
        headers = {"Authorization": f"Bearer: {setting['_token']}"}
        try:
            response = self._client.post(setting["endpointUri"], json=payload, headers=headers)
        except httpx.HTTPError as error:
            return f"error: {type(error).__name__}"
        return "ok" if 200 <= response.status_code < 300 else f"http {response.status_code}"

    def _count_failure(self, setting: dict[str, Any]) -> None:
        key = (setting["orgId"], setting["endpointUri"])
        now = time.monotonic()
        count, since = self._failures.get(key, (0, now))
        if now - since > self.config.fail_window_seconds:
            count = 0
        if count >= self.config.fail_threshold:
            setting["activated"] = False
            self.store.save_webhook(setting)
            log.warning("webhook_deactivated", endpoint=setting["endpointUri"], org_id=setting["orgId"])
            self._failures.pop(key, None)
            return
        # The TTL is renewed on every failure, like the platform's Redis counter.
        self._failures[key] = (count + 1, now)


Notifier = Callable[[set[str], str, str], None]
