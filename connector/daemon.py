"""The long-running process: each step on its own interval, two-stage stop, reload, systemd notify.

Signals arrive through ``signal.set_wakeup_fd`` on a socket pair: the Python-level handlers do
nothing at all (no lock, no log, no I/O inside a handler), the main loop reads the signal numbers
from the socket and acts in ordinary code. Worker threads use the same socket to say "a step just
finished", so a drain ends as soon as the last step returns.

Steps never call each other (they meet in the state store), so a step that raises is logged and
simply runs again at its next interval; the daemon never dies of a step's exception.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from connector.errors import ConfigError, ConnectorError
from connector.health import StepStatus
from connector.logs import is_idle
from connector.notify import notify, watchdog_interval

__all__ = ["Daemon", "ReloadCallback", "Step"]

Step = Callable[[threading.Event], object]
"""One pass of a step. The event is the stop event: check it between records and return early."""
ReloadCallback = Callable[[], bool]
"""Validate and apply new config/mappings; return False (or raise) to keep the running ones."""

log = structlog.get_logger("connector.daemon")

_TERMINATE = (signal.SIGTERM, signal.SIGINT)
_WAKE = b"\0"  # not a signal number: "a step finished", written by worker threads
_REPEAT_SECONDS = 60.0
_RERUN_DELAY_SECONDS = 0.3
_RESERVED_LOG_KEYS = frozenset({"event", "level", "timestamp", "step", "error", "error_type", "duration"})


class _QuietSkips(logging.Filter):
    """Drops APScheduler's "skipped: maximum number of running instances" warnings.

    A step longer than its interval is normal during a backfill; the next run simply waits, and a
    warning every few seconds would drown the lines that matter.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances" not in str(record.msg)


_scheduler_logger = logging.getLogger("apscheduler.scheduler.connector")
_scheduler_logger.addFilter(_QuietSkips())


def _flush_and_exit(code: int) -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit: worker threads still inside a step would otherwise be joined at interpreter exit.
    os._exit(code)


class Daemon:
    """Runs ``steps`` forever on their ``intervals`` until told to stop; see :meth:`run`."""

    def __init__(
        self,
        steps: Mapping[str, Step],
        intervals: Mapping[str, float],
        *,
        drain_timeout: float,
        on_reload: ReloadCallback | None = None,
        status: StepStatus | None = None,
        env: Mapping[str, str] | None = None,
        exit_now: Callable[[int], None] = _flush_and_exit,
    ) -> None:
        missing = sorted(set(steps) - set(intervals))
        if missing:
            raise ValueError(f"no interval for step(s): {', '.join(missing)}")
        self._steps = dict(steps)
        self._intervals = {name: float(intervals[name]) for name in steps}
        self._drain_timeout = drain_timeout
        self._on_reload = on_reload
        self.status = status if status is not None else StepStatus()
        self._env = os.environ if env is None else env
        self._exit_now = exit_now
        self.stop_event = threading.Event()
        """Set when draining starts; passed to every step."""
        self._active = 0
        self._draining = False
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._scheduler: BackgroundScheduler | None = None
        self._inside: set[str] = set()
        """Steps inside :meth:`_run_step` now (a run requested for them would be skipped)."""
        self._again: set[str] = set()
        """Steps asked to run again (run_soon) while they were running."""
        self._said: dict[str, tuple[str, float]] = {}
        """Step → (cause, when) of the last failure logged, so a repeated cause is not a flood."""

    # --- public ---------------------------------------------------------------------------------

    def run(self) -> int:
        """Block until stopped. Returns 0 after a clean drain (or a drain timeout, after which the
        process exits at once); a second SIGTERM/SIGINT exits at once with 128 + signal number."""
        scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=max(1, len(self._steps)))},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            logger=_scheduler_logger,
        )
        now = datetime.now(UTC)
        for name, interval in self._intervals.items():
            self.status.register(name, interval)
            scheduler.add_job(
                self._run_step,
                IntervalTrigger(seconds=interval),
                args=[name],
                id=name,
                name=name,
                next_run_time=now,
            )
        self._scheduler = scheduler
        try:
            with self._signals():
                scheduler.start()
                watchdog = watchdog_interval(self._env)
                log.info("daemon_started", steps=self._intervals, watchdog_seconds=watchdog, pid=os.getpid())
                notify("READY=1\nSTATUS=running", self._env)
                return self._loop(scheduler, watchdog)
        finally:
            if scheduler.running:
                scheduler.shutdown(wait=False)
            self._wake_r.close()
            self._wake_w.close()

    def request_stop(self) -> None:
        """Ask for a drain from any thread, as a SIGTERM would (a second call forces the exit)."""
        self._send(bytes([signal.SIGTERM]))

    def run_soon(self, name: str) -> None:
        """Run a step now instead of at its next interval (a webhook announced work for it).

        A step already running runs again as soon as it returns: the work may have arrived after
        it read its input (a run requested meanwhile would be skipped as a second instance).
        """
        with self._lock:
            if self._draining or self._scheduler is None or not self._scheduler.running:
                return
            if name in self._inside:
                self._again.add(name)
        if name in self._intervals:
            self._scheduler.modify_job(name, next_run_time=datetime.now(UTC))

    def reschedule(self, intervals: Mapping[str, float]) -> None:
        """Change step intervals (from an ``on_reload`` callback); unknown names are ignored."""
        for name, interval in intervals.items():
            if name in self._intervals and self._scheduler is not None:
                self._intervals[name] = float(interval)
                self.status.register(name, float(interval))
                self._scheduler.reschedule_job(name, trigger=IntervalTrigger(seconds=float(interval)))

    # --- main loop ------------------------------------------------------------------------------

    def _loop(self, scheduler: BackgroundScheduler, watchdog: float | None) -> int:
        tick = min(1.0, watchdog) if watchdog else 1.0
        last_ping = 0.0
        terms = 0
        deadline: float | None = None
        while True:
            for signum in self._wait(tick):
                if signum == signal.SIGHUP and deadline is None:
                    self._reload()
                elif signum in _TERMINATE:
                    terms += 1
                    if terms >= 2:
                        running = self.status.running()
                        log.error("daemon_forced_exit", signal=signal.Signals(signum).name, running=running)
                        self._exit_now(128 + signum)
                        return 128 + signum
            if terms == 1 and deadline is None:
                deadline = time.monotonic() + self._drain_timeout
                self._start_drain(scheduler)
            if deadline is not None:
                with self._lock:
                    idle = self._active == 0
                if idle:
                    log.info("daemon_stopped")
                    return 0
                if time.monotonic() >= deadline:
                    log.warning(
                        "daemon_drain_timeout",
                        running=self.status.running(),
                        drain_timeout_seconds=self._drain_timeout,
                    )
                    self._exit_now(0)
                    return 0
            if watchdog and time.monotonic() - last_ping >= watchdog and self._scheduler_alive(scheduler):
                notify("WATCHDOG=1", self._env)
                last_ping = time.monotonic()

    def _wait(self, timeout: float) -> list[int]:
        """Signal numbers received (and wake-ups) within ``timeout`` seconds."""
        readable, _, _ = select.select([self._wake_r], [], [], timeout)
        if not readable:
            return []
        try:
            data = self._wake_r.recv(4096)
        except BlockingIOError:
            return []
        return [b for b in data if b != _WAKE[0]]

    def _start_drain(self, scheduler: BackgroundScheduler) -> None:
        with self._lock:
            self._draining = True
        self.stop_event.set()
        notify("STOPPING=1\nSTATUS=draining", self._env)
        log.info("daemon_draining", running=self.status.running(), drain_timeout_seconds=self._drain_timeout)
        scheduler.shutdown(wait=False)

    @staticmethod
    def _scheduler_alive(scheduler: BackgroundScheduler) -> bool:
        # The scheduler thread is private to APScheduler, but "is it alive" is exactly what the
        # watchdog must prove: a dead scheduler thread should get the service restarted.
        thread = getattr(scheduler, "_thread", None)
        return bool(scheduler.running and (thread is None or thread.is_alive()))

    def _reload(self) -> None:
        if self._on_reload is None:
            log.info("reload_ignored", reason="no reload callback")
            return
        notify(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}", self._env)
        try:
            ok = bool(self._on_reload())
        except ConfigError as exc:
            log.error("reload_rejected", problems=exc.problems, kept="running configuration")
        except Exception as exc:
            log.exception("reload_failed", error=str(exc), kept="running configuration")
        else:
            if ok:
                log.info("reload_applied")
            else:
                log.warning("reload_rejected", kept="running configuration")
        notify("READY=1\nSTATUS=running", self._env)

    # --- worker side ----------------------------------------------------------------------------

    def _run_step(self, name: str) -> None:
        with self._lock:
            if self._draining:
                return
            self._active += 1
            self._inside.add(name)
        self.status.started(name)
        start = time.perf_counter()
        try:
            with structlog.contextvars.bound_contextvars(step=name):
                result = self._steps[name](self.stop_event)
                duration = time.perf_counter() - start
                self.status.succeeded(name, duration)
                self._said.pop(name, None)
                self._log_success(result, duration)
        except Exception as exc:
            duration = time.perf_counter() - start
            # A ConnectorError's message is written for the operator; anything else is a bug.
            reason = exc.message if isinstance(exc, ConnectorError) else f"{type(exc).__name__}: {exc}"
            self.status.failed(name, duration, reason)
            self._log_failure(name, exc, duration)
        finally:
            with self._lock:
                self._active -= 1
                self._inside.discard(name)
                again = name in self._again and not self._draining
                self._again.discard(name)
            if again and self._scheduler is not None:
                # A moment later: until this function returns, APScheduler counts this run as
                # running and would skip the next one as a second instance.
                soon = datetime.now(UTC) + timedelta(seconds=_RERUN_DELAY_SECONDS)
                with contextlib.suppress(Exception):  # the scheduler may be shutting down
                    self._scheduler.modify_job(name, next_run_time=soon)
            self._send(_WAKE)

    @staticmethod
    def _log_success(result: object, duration: float) -> None:
        counts: dict[str, Any] = {}
        if isinstance(result, Mapping):
            counts = {k: v for k, v in result.items() if k not in ("step", "ok")}
        if counts and not is_idle(counts):
            log.info("step_done", duration=round(duration, 3), **_safe_keys(counts))
        else:  # an idle pass every few seconds would drown the lines that matter
            log.debug("step_done", duration=round(duration, 3), **_safe_keys(counts))

    def _log_failure(self, name: str, exc: Exception, duration: float) -> None:
        # The same expected cause every few seconds (a refused token, a missing folder) is said once
        # a minute; /healthz and the metrics show it all along. A bug is logged every time.
        now = time.monotonic()
        said = self._said.get(name)
        repeated = said is not None and said[0] == str(exc) and now - said[1] < _REPEAT_SECONDS
        if isinstance(exc, ConnectorError) and repeated:
            log.debug("step_still_failing", step=name, error=str(exc))
            return
        self._said[name] = (str(exc), now)
        fields: dict[str, Any] = {
            "step": name,
            "error": str(exc),
            "error_type": type(exc).__name__,
            "duration": round(duration, 3),
        }
        if isinstance(exc, ConnectorError):
            # Expected failure kinds: the message says what to do, a traceback would be noise.
            log.error("step_failed", **fields, **_safe_keys(exc.context))
        else:
            log.exception("step_failed", **fields)

    def _send(self, data: bytes) -> None:
        # If this fails (socket closed or full), the loop still wakes on its tick.
        with contextlib.suppress(OSError):
            self._wake_w.send(data)

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # only the main thread may own signals; request_stop() still works
            return
        previous = {sig: signal.getsignal(sig) for sig in (*_TERMINATE, signal.SIGHUP)}
        old_fd = signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        for sig in previous:
            signal.signal(sig, _ignore_in_handler)
        try:
            yield
        finally:
            signal.set_wakeup_fd(old_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _ignore_in_handler(signum: int, frame: FrameType | None) -> None:
    """Installed so the default action (death) does not happen; the wakeup fd carries the signal."""


def _safe_keys(values: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in values.items() if str(k) not in _RESERVED_LOG_KEYS}
