"""What each daemon step did last, shared by the daemon, ``/healthz`` and the metrics.

The daemon writes (from its worker threads), the HTTP endpoint and the metrics collector read:
hence one lock and copies out. "Healthy" is judged per step against its own interval, because a
tracking step that runs every minute and a push step that runs every five seconds go stale at
different speeds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from connector.logs import redact

__all__ = ["HealthCheck", "HealthReport", "StepRecord", "StepStatus"]

Clock = Callable[[], float]


@dataclass(frozen=True)
class StepRecord:
    """One step's history, as of the last change. Times are epoch seconds."""

    name: str
    interval: float
    registered_at: float
    running_since: float | None = None
    last_success: float | None = None
    last_failure: float | None = None
    last_duration: float | None = None
    last_error: str | None = None
    successes: int = 0
    failures: int = 0

    @property
    def failing(self) -> bool:
        """The last run failed (a success since then clears it)."""
        return self.last_failure is not None and (
            self.last_success is None or self.last_failure > self.last_success
        )

    def lag(self, now: float) -> float:
        """Seconds since the last success (or since registration when it never succeeded)."""
        return max(0.0, now - (self.last_success if self.last_success is not None else self.registered_at))


@dataclass
class StepStatus:
    """Thread-safe registry of :class:`StepRecord`, one per step name."""

    clock: Clock = time.time
    _records: dict[str, StepRecord] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, name: str, interval: float) -> None:
        with self._lock:
            old = self._records.get(name)
            self._records[name] = (
                replace(old, interval=interval) if old else StepRecord(name, interval, self.clock())
            )

    def started(self, name: str) -> None:
        self._update(name, running_since=self.clock())

    def succeeded(self, name: str, duration: float) -> None:
        with self._lock:
            rec = self._records[name]
            self._records[name] = replace(rec, running_since=None, last_success=self.clock(),
                                          last_duration=duration, successes=rec.successes + 1)

    def failed(self, name: str, duration: float, error: str) -> None:
        with self._lock:
            rec = self._records[name]
            self._records[name] = replace(rec, running_since=None, last_failure=self.clock(),
                                          last_duration=duration, last_error=error,
                                          failures=rec.failures + 1)

    def snapshot(self) -> dict[str, StepRecord]:
        with self._lock:
            return dict(self._records)

    def running(self) -> list[str]:
        return [name for name, rec in self.snapshot().items() if rec.running_since is not None]

    def _update(self, name: str, **changes: Any) -> None:
        with self._lock:
            self._records[name] = replace(self._records[name], **changes)


@dataclass(frozen=True)
class HealthReport:
    """The answer of ``/healthz``: ok, or degraded with the failed and stale steps named."""

    ok: bool
    stale: Mapping[str, float]
    """Stale step → seconds since its last success."""
    steps: Mapping[str, Mapping[str, Any]]
    failed: Mapping[str, str] = field(default_factory=dict)
    """Step whose last run failed → its one-line cause (what failed, what to do)."""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "ok" if self.ok else "degraded"}
        if not self.ok:
            body["failed_steps"] = dict(sorted(self.failed.items()))
            body["stale_steps"] = sorted(self.stale)
        body["steps"] = dict(self.steps)
        return body


@dataclass(frozen=True)
class HealthCheck:
    """Callable judging a :class:`StepStatus`: degraded while a step's last run failed (a whole
    source or target failed: row-level problems never fail a step), or when a step is stale,
    ``factor`` × its interval without a success (a step stuck in a long run)."""

    status: StepStatus
    factor: float = 3.0

    def __call__(self) -> HealthReport:
        now = self.status.clock()
        stale: dict[str, float] = {}
        failed: dict[str, str] = {}
        steps: dict[str, dict[str, Any]] = {}
        for name, rec in sorted(self.status.snapshot().items()):
            lag = rec.lag(now)
            if lag > self.factor * rec.interval:
                stale[name] = lag
            if rec.failing:
                failed[name] = rec.last_error or "failed"
            steps[name] = {
                "state": "running" if rec.running_since is not None else ("failed" if rec.failing else "ok"),
                "lag_seconds": round(lag, 3),
                "threshold_seconds": self.factor * rec.interval,
                "last_success": rec.last_success,
                "last_error": redact(rec.last_error, 1000) if rec.failing and rec.last_error else None,
                "running": rec.running_since is not None,
            }
        return HealthReport(ok=not stale and not failed, stale=stale, steps=steps, failed=failed)
