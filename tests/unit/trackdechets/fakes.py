"""Deterministic stand-ins for time and for Trackdéchets' fixed-window rate limiter."""

from __future__ import annotations

import math
import threading


class FakeClock:
    """A wall clock that only moves when told to; ``wait`` advances it instead of sleeping."""

    def __init__(self, start: float = 1_700_000_000.25) -> None:
        self.now = start
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return stop.is_set()


class FixedWindowLimiter:
    """The server side: ``limit`` requests per ``window`` seconds, windows from ``start``."""

    def __init__(self, limit: int, window: float, start: float) -> None:
        self.limit, self.window, self.start = limit, window, start
        self.index, self.count = 0, 0
        self.accepted = self.refused = 0

    def hit(self, now: float) -> tuple[int, dict[str, str]]:
        index = int((now - self.start) // self.window)
        if index != self.index:
            self.index, self.count = index, 0
        self.count += 1
        reset = math.ceil(self.start + (index + 1) * self.window)
        remaining = max(0, self.limit - self.count)
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset),
        }
        if self.count > self.limit:
            self.refused += 1
            headers["Retry-After"] = str(int(self.window))
            return 429, headers
        self.accepted += 1
        return 200, headers


class FirstHitWindowLimiter(FixedWindowLimiter):
    """Like Trackdéchets' Redis store: a window starts at the first request after the last ended."""

    def hit(self, now: float) -> tuple[int, dict[str, str]]:
        if now - self.start >= self.window or self.index == -1:
            self.start, self.count, self.index = now, 0, 0
        return super().hit(now)
