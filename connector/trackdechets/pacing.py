"""One request budget per process, so that 429s are rare events rather than the control loop.

Trackdéchets counts HTTP requests per client IP in fixed windows (1,000 per 60 s) and tells us on
every answer how many remain (``X-RateLimit-Remaining``) and when the window ends
(``X-RateLimit-Reset``, epoch seconds rounded up). The pacer trusts those headers while they are
fresh: it spends exactly what the server says remains, minus what is still in flight. When it knows
nothing (start-up, a window just ended, a server without the headers) it falls back to caution: one
probe request at a time, or a token bucket at ``share × limit`` if the server never sends headers.

Because the reset is rounded up to a whole second, the real window ends up to 1 s earlier than
announced. When our own probe opened a window, that window ends no later than the probe's send time
plus the window length (a limiter that starts windows at the first request, like Trackdéchets'
Redis store, ends it exactly then): that bound is used first. When another client opened it, the
offset is learnt by bisection over successive windows, at the cost of a few 429s per run.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping

__all__ = ["Pacer", "RateHeaders", "parse_rate_headers"]

Clock = Callable[[], float]
Wait = Callable[[threading.Event, float], bool]

_POLL = 0.005
"""How often a waiting thread looks again when it waits for another thread's answer, not a time."""
_LEARNED = 0.03
"""Stop bisecting the reset offset once it is known within this many seconds."""
_MARGIN = 0.003
"""Sent this long after a window we opened should end, a request is counted in the next one."""


class RateHeaders(tuple[int | None, int | None, float | None]):
    """``(limit, remaining, reset)`` as read from an answer; each ``None`` when absent."""

    __slots__ = ()

    @property
    def limit(self) -> int | None:
        return self[0]

    @property
    def remaining(self) -> int | None:
        return self[1]

    @property
    def reset(self) -> float | None:
        return self[2]


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def parse_rate_headers(headers: Mapping[str, str] | None, now: float) -> RateHeaders:
    """Read the rate-limit headers; a small ``X-RateLimit-Reset`` is taken as seconds from now."""
    if headers is None:
        return RateHeaders((None, None, None))
    headers = {key.lower(): value for key, value in headers.items()}
    reset_raw = _int(headers.get("x-ratelimit-reset"))
    reset: float | None = None
    if reset_raw is not None:
        # Some limiters send a delay rather than an epoch; no epoch is below a billion.
        reset = float(reset_raw) if reset_raw > 1_000_000_000 else now + reset_raw
    return RateHeaders(
        (_int(headers.get("x-ratelimit-limit")), _int(headers.get("x-ratelimit-remaining")), reset)
    )


def _default_wait(stop: threading.Event, seconds: float) -> bool:
    return stop.wait(seconds)


class Pacer:
    """Thread-safe request budget shared by every thread of the process.

    Call ``acquire()`` before each request and ``observe()`` after it (also after a transport
    failure, with ``None``), exactly once each.
    """

    def __init__(
        self,
        limit: int = 1000,
        window: float = 60.0,
        share: float = 0.9,
        *,
        clock: Clock = time.time,
        wait: Wait = _default_wait,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        self.limit = limit
        self.window = window
        self.share = share
        self._clock = clock
        self._wait = wait
        self._lock = threading.Lock()
        # Fallback token bucket, used only against a server that sends no rate headers.
        self._tokens = share * limit
        self._refilled_at = clock()
        # What the server told us about its current window.
        self._headers_seen: bool | None = None
        self._reset: float | None = None
        self._server_remaining = 0
        self._inflight = 0
        self._paused_until = 0.0
        # Bounds on how much earlier than the announced reset the window really ends.
        self._off_lo = 0.0
        self._off_hi = 1.0
        self._probe_sent_at: float | None = None
        self._probe_learns = False
        self._opened: tuple[float, float] | None = None
        """(reset, send time) of the window our own probe opened."""
        self.throttled = 0
        """429 answers seen, for metrics."""

    # --- public -------------------------------------------------------------------------------

    def acquire(self, stop: threading.Event | None = None, timeout: float | None = None) -> bool:
        """Wait for the right to send one request; False if ``stop`` was set or ``timeout`` passed."""
        stop = stop or threading.Event()
        deadline = None if timeout is None else self._clock() + timeout
        while True:
            if stop.is_set():
                return False
            with self._lock:
                now = self._clock()
                delay = self._try_take(now)
            if delay <= 0:
                return True
            # A floor: a sub-microsecond wait would not even move a float epoch clock.
            delay = max(delay, 0.001)
            if deadline is not None:
                if now >= deadline:
                    return False
                delay = min(delay, deadline - now)
            if self._wait(stop, delay):
                return False

    def observe(self, headers: Mapping[str, str] | None, status: int | None) -> None:
        """Correct the budget from an answer's headers (``None`` when no answer came back)."""
        with self._lock:
            now = self._clock()
            self._inflight = max(0, self._inflight - 1)
            probe_sent_at, self._probe_sent_at = self._probe_sent_at, None
            rate = parse_rate_headers(headers, now)
            if rate.remaining is None or rate.reset is None:
                if headers is not None and self._headers_seen is None:
                    self._headers_seen = False
                if status == 429:
                    self._on_throttled(now, headers, rate)
                return
            self._headers_seen = True
            if rate.limit:
                self.limit = rate.limit
            if self._probe_learns:
                self._learn_offset(rate.reset, status, now, probe_sent_at)
            if self._reset is None or rate.reset >= self._reset + self.window / 2:
                self._reset, self._server_remaining = rate.reset, rate.remaining
                if probe_sent_at is not None and status != 429:
                    self._opened = (rate.reset, probe_sent_at)
            elif abs(rate.reset - self._reset) < self.window / 2:
                # Answers may arrive out of order: the lowest count is the newest.
                self._server_remaining = min(self._server_remaining, rate.remaining)
            if status == 429:
                self._on_throttled(now, headers, rate)

    def remaining(self) -> int:
        """Requests this process may still send before the budget refills (for metrics)."""
        with self._lock:
            now = self._clock()
            if self._window_known(now):
                return max(0, self._server_remaining - self._inflight)
            self._refill(now)
            return int(self._tokens)

    # --- internals (called with the lock held) ------------------------------------------------

    def _open_at(self) -> float:
        """When we believe the current server window ends, in our clock."""
        # A window we opened ourselves ends at a known time; bisecting there would only cost 429s
        # when the limiter starts windows at the first request (the offset changes every window).
        opened = self._opened_end()
        return opened if opened < math.inf else self._bisected_end()

    def _bisected_end(self) -> float:
        assert self._reset is not None
        learning = self._off_hi - self._off_lo > _LEARNED
        offset = (self._off_lo + self._off_hi) / 2 if learning else self._off_lo
        return self._reset - offset

    def _opened_end(self) -> float:
        if self._opened is None or self._opened[0] != self._reset:
            return math.inf
        return self._opened[1] + self.window + _MARGIN

    def _window_known(self, now: float) -> bool:
        return bool(self._headers_seen) and self._reset is not None and now < self._open_at()

    def _try_take(self, now: float) -> float:
        """Take one request if allowed and return 0, or return how long to wait first."""
        if now < self._paused_until:
            return self._paused_until - now
        if self._window_known(now):
            if self._server_remaining - self._inflight > 0:
                self._inflight += 1
                return 0.0
            return max(self._open_at() - now, _POLL)
        if self._headers_seen is False:
            self._refill(now)
            if self._tokens >= 1:
                self._tokens -= 1
                self._inflight += 1
                return 0.0
            return (1 - self._tokens) * self.window / (self.share * self.limit)
        # Start-up or a window just ended: one probe at a time until an answer tells us more.
        if self._inflight == 0:
            self._inflight = 1
            self._probe_sent_at = now
            # Only a probe sent on the bisection's guess says anything about the offset.
            self._probe_learns = self._reset is not None and self._opened_end() == math.inf
            return 0.0
        return _POLL

    def _refill(self, now: float) -> None:
        rate = self.share * self.limit / self.window
        self._tokens = min(self.share * self.limit, self._tokens + (now - self._refilled_at) * rate)
        self._refilled_at = now

    def _learn_offset(
        self, reset: float, status: int | None, now: float, probe_sent_at: float | None
    ) -> None:
        """Narrow the reset offset from a probe sent near the end of a known window."""
        if probe_sent_at is None or self._reset is None:
            return
        if reset >= self._reset + self.window / 2 and status != 429:
            # Counted in the new window, no later than now: the old one ended before now.
            self._off_lo = max(self._off_lo, self._reset - now)
        elif abs(reset - self._reset) < self.window / 2:
            # Counted in the old window, no earlier than it was sent: it ended after that.
            self._off_hi = min(self._off_hi, self._reset - probe_sent_at)
        if self._off_lo > self._off_hi:
            # The windows moved (other length, clock step): learn again around the new evidence.
            low, high = sorted((self._off_lo, self._off_hi))
            self._off_lo, self._off_hi = max(low - 0.5, -1.0), high + 0.5

    def _on_throttled(self, now: float, headers: Mapping[str, str] | None, rate: RateHeaders) -> None:
        self.throttled += 1
        self._server_remaining = 0
        if self._headers_seen and self._reset is not None and rate.reset is not None:
            # express-rate-limit v5 sends Retry-After = the whole window length, not the time left:
            # the reset header (and what we learned about it) is the better guide.
            until = self._open_at()
        else:
            retry_after = _int(headers.get("retry-after")) if headers is not None else None
            until = now + (retry_after if retry_after is not None else self.window)
        # A floor, so that a clock running ahead of the server's cannot spin on 429s.
        self._paused_until = max(self._paused_until, until, now + _POLL * 10)
