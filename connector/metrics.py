"""Prometheus metrics and the optional ``/metrics`` + ``/healthz`` HTTP endpoint.

The registry is our own (never prometheus-client's global one) so that tests, the CLI and a
daemon in the same process do not share counters. Values that live elsewhere (records per state
in the state store, the rate budget in the pacer, step times in :class:`StepStatus`) are read by
callbacks at scrape time rather than copied, so a scrape can never disagree with ``status``.

How the counts reconcile: every record read from a source is in exactly one state, so
``sum(tdc_records) == records read`` and, grouped, read = sent (``synced`` + ``done``) + rejected
(``rejected`` + ``conflict``) + pending (``pending`` + ``in_flight``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from connector.health import HealthCheck, HealthReport, StepStatus
from connector.local_http import BackgroundHTTPServer, send
from connector.state.store import sum_by_state

if TYPE_CHECKING:
    from connector.settings import Settings

__all__ = ["RECONCILIATION", "ConnectorMetrics", "MetricsServer", "build_metrics"]

log = structlog.get_logger("connector.metrics")

RECONCILIATION = {
    "sent": ("synced", "done"),
    "rejected": ("rejected", "conflict"),
    "pending": ("pending", "in_flight"),
}
"""Record states grouped as the operator reads them: read = sent + rejected + pending."""


class _CallbackCollector(Collector):
    """Reads the engine's callbacks and the step registry at each scrape."""

    def __init__(
        self,
        records_by_state: Callable[[], Mapping[str, int]] | None,
        rate_budget: Callable[[], float] | None,
        status: StepStatus | None,
        rate_limited_total: Callable[[], float] | None = None,
    ) -> None:
        self._records_by_state = records_by_state
        self._rate_budget = rate_budget
        self._status = status
        self._rate_limited_total = rate_limited_total

    def collect(self) -> Iterator[Metric]:
        if self._records_by_state is not None:
            counts = _safely(self._records_by_state, "records_by_state")
            if counts is not None:
                records = GaugeMetricFamily("tdc_records", "Source records by connector state "
                                            "(their sum is the number of records read)", labels=["state"])
                for state, count in sorted(counts.items()):
                    records.add_metric([state], float(count))
                yield records
        if self._rate_budget is not None:
            budget = _safely(self._rate_budget, "rate_budget")
            if budget is not None:
                yield GaugeMetricFamily("tdc_rate_budget_remaining",
                                        "Requests the connector may still send in the current window",
                                        value=float(budget))
        if self._rate_limited_total is not None:
            seen = _safely(self._rate_limited_total, "rate_limited_total")
            if seen is not None:
                yield CounterMetricFamily("tdc_rate_limited", "HTTP 429 responses received", value=seen)
        if self._status is not None:
            yield from _step_metrics(self._status)


def _step_metrics(status: StepStatus) -> Iterator[Metric]:
    now = status.clock()
    lag = GaugeMetricFamily("tdc_step_lag_seconds", "Seconds since the step last succeeded", labels=["step"])
    last = GaugeMetricFamily("tdc_step_last_success_timestamp_seconds",
                             "Unix time of the step's last success", labels=["step"])
    duration = GaugeMetricFamily("tdc_step_last_duration_seconds", "Duration of the step's last run",
                                 labels=["step"])
    running = GaugeMetricFamily("tdc_step_running", "1 while the step runs", labels=["step"])
    failing = GaugeMetricFamily("tdc_step_failed", "1 while the step's last run failed for a whole "
                                "source or target (see /healthz for the cause)", labels=["step"])
    runs = CounterMetricFamily("tdc_step_runs", "Step runs by outcome", labels=["step", "outcome"])
    for name, rec in sorted(status.snapshot().items()):
        lag.add_metric([name], rec.lag(now))
        if rec.last_success is not None:
            last.add_metric([name], rec.last_success)
        if rec.last_duration is not None:
            duration.add_metric([name], rec.last_duration)
        running.add_metric([name], 1.0 if rec.running_since is not None else 0.0)
        failing.add_metric([name], 1.0 if rec.failing else 0.0)
        runs.add_metric([name, "success"], rec.successes)
        runs.add_metric([name, "failure"], rec.failures)
    yield from (lag, last, duration, running, failing, runs)


def _safely(callback: Callable[[], Any], name: str) -> Any:
    # A scrape must not fail because the state store is busy: skip the metric, say why.
    try:
        return callback()
    except Exception as exc:
        log.warning("metrics_callback_failed", callback=name, error=str(exc))
        return None


class ConnectorMetrics:
    """Counters the client increments, plus collectors over callbacks, in one registry."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        records_by_state: Callable[[], Mapping[str, int]] | None = None,
        rate_budget: Callable[[], float] | None = None,
        status: StepStatus | None = None,
        rate_limited_total: Callable[[], float] | None = None,
    ) -> None:
        """``rate_limited_total``: read the 429 count from its owner (the pacer) instead of
        counting here; :meth:`observe_rate_limited` then does nothing."""
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter("tdc_requests", "Trackdéchets API requests by outcome",
                                ["outcome"], registry=self.registry)
        self.rate_limited: Counter | None = None
        if rate_limited_total is None:
            self.rate_limited = Counter("tdc_rate_limited", "HTTP 429 responses received",
                                        registry=self.registry)
        self.retries = Counter("tdc_retries", "Requests retried after a transient fault",
                               registry=self.registry)
        self.registry.register(_CallbackCollector(records_by_state, rate_budget, status, rate_limited_total))

    def observe_request(self, outcome: str) -> None:
        """Count one request; ``outcome`` is a small fixed set (``ok``, ``error``, ``rate_limited``...)."""
        self.requests.labels(outcome=outcome).inc()

    def observe_rate_limited(self) -> None:
        if self.rate_limited is not None:
            self.rate_limited.inc()

    def observe_retry(self) -> None:
        self.retries.inc()

    def render(self) -> bytes:
        """The text exposition format, as ``/metrics`` serves it."""
        return generate_latest(self.registry)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            send(self, 200, CONTENT_TYPE_LATEST, generate_latest(self.server.registry))
        elif path == "/healthz":
            report = self.server.health() if self.server.health else HealthReport(True, {}, {})
            body = json.dumps(report.to_json(), sort_keys=True).encode()
            send(self, 200 if report.ok else 503, "application/json", body)
        else:
            send(self, 404, "text/plain; charset=utf-8", b"not found: try /metrics or /healthz\n")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics_request", line=format % args)


class _Server(BackgroundHTTPServer):
    setting = "metrics"
    exposes = "/metrics and /healthz (record counts per state, step health, API budget)"
    registry: CollectorRegistry
    health: Callable[[], HealthReport] | None


class MetricsServer:
    """``/metrics`` and ``/healthz`` on a loopback port, served from a background thread."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        health: Callable[[], HealthReport] | None = None,
    ) -> None:
        self._server = _Server(host, port, _Handler)
        self._server.registry = registry
        self._server.health = health
        self.metrics: ConnectorMetrics | None = None
        """Set by :func:`build_metrics` so callers can reach the counters."""

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return self._server.base_url

    def start(self) -> MetricsServer:
        """Bind and serve; a taken port is a ConfigError naming metrics.port (exit 78 from the CLI)."""
        self._server.start("tdc-metrics")
        log.info("metrics_serving", url=self.url)
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Runtime(Protocol):
    store: Any
    client: Any


class _HasStatus(Protocol):
    status: StepStatus


def build_metrics(settings: Settings, daemon: _HasStatus, runtime: Callable[[], _Runtime]) -> MetricsServer:
    """Start the endpoint for a daemon; ``runtime`` returns the current runtime (it changes on reload).

    The rate budget and 429 count come from the client's pacer when it exposes one.
    """

    def pacer() -> Any:
        client = runtime().client
        # The client keeps its pacer; accept either spelling until it is public API.
        return getattr(client, "pacer", None) or getattr(client, "_pacer", None)

    def budget() -> float:
        p = pacer()
        if p is None:
            raise LookupError("no pacer (offline runtime)")
        return float(p.remaining())

    def throttled() -> float:
        p = pacer()
        return float(getattr(p, "throttled", 0)) if p is not None else 0.0

    metrics = ConnectorMetrics(
        records_by_state=lambda: sum_by_state(runtime().store.counts()),
        rate_budget=budget,
        status=daemon.status,
        rate_limited_total=throttled,
    )
    health = HealthCheck(daemon.status, settings.daemon.step_health_factor)
    server = MetricsServer(settings.metrics.host, settings.metrics.port, metrics.registry, health)
    server.metrics = metrics
    return server.start()
